"""Status changes: every change of a transaction appends an event with the next ``seq``,
and a notification that PostgreSQL delivers to every listening API process at commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from db.models import Transaction, TransactionEvent, User
from db.submissions import insert_event, next_user_seq
from db.unit_of_work import UnitOfWork
from services import metrics
from services.domain import TransactionStatus

CHANNEL = "walletql_events"


def notification(event: TransactionEvent) -> str:
    """The NOTIFY payload: ids and the event itself, well under PostgreSQL's 8000 bytes."""
    return json.dumps(
        {
            "tx": str(event.transaction_id),
            "user": str(event.user_id),
            "seq": event.seq,
            "useq": event.user_seq,
            "status": event.status,
            "reason": (event.reason or "")[:1000] or None,
            "at": event.at.isoformat(),
        }
    )


async def record_event(
    uow: UnitOfWork, tx: Transaction, status: TransactionStatus, reason: str | None = None
) -> TransactionEvent:
    """Set ``tx.status`` and append its event, in the caller's database transaction."""
    # The user's row lock orders this user's events by commit (see TransactionEvent.user_seq).
    user_seq = (
        await uow.session.execute(
            update(User)
            .where(User.id == tx.user_id)
            .values(event_seq=User.event_seq + 1)
            .returning(User.event_seq)
        )
    ).scalar_one()
    tx.status = status
    tx.last_seq += 1
    event = TransactionEvent(
        transaction_id=tx.id,
        user_id=tx.user_id,
        seq=tx.last_seq,
        user_seq=user_seq,
        status=status,
        reason=reason,
        at=datetime.now(UTC),
    )
    uow.session.add(event)

    _count_after_commit(uow, status)
    # NOTIFY inside the transaction: PostgreSQL delivers it only if, and when, we commit.
    await uow.session.execute(select(func.pg_notify(CHANNEL, notification(event))))
    return event


async def record_first_event(uow: UnitOfWork, tx: Transaction) -> TransactionEvent:
    """The first event of a transaction just inserted (on the unit's driver connection) with
    its status and ``last_seq`` 1: the event, user_seq and NOTIFY ``record_event`` writes,
    in two statements and none of the ORM's."""
    driver = await uow.driver_in_transaction()
    # The user's row lock orders this user's events by commit, as in record_event.
    user_seq = await next_user_seq(driver, tx.user_id)
    event = TransactionEvent(
        transaction_id=tx.id,
        user_id=tx.user_id,
        seq=tx.last_seq,
        user_seq=user_seq,
        status=tx.status,
        reason=None,
        at=datetime.now(UTC),
    )
    row = (tx.id, tx.user_id, tx.last_seq, user_seq, tx.status.value, None, event.at)
    await insert_event(driver, row, CHANNEL, notification(event))
    _count_after_commit(uow, tx.status)
    return event


def _count_after_commit(uow: UnitOfWork, status: TransactionStatus) -> None:
    async def count() -> None:
        metrics.count_status_change(status.value)

    uow.after_commit(count)  # counted once committed: a rollback changed nothing
