"""Status changes: every change of a transaction appends an event with the next ``seq``,
and a notification that PostgreSQL delivers to every listening API process at commit."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from db.models import Transaction, TransactionEvent, User
from db.submissions import insert_event
from db.unit_of_work import UnitOfWork
from services import metrics
from services.domain import TransactionStatus

CHANNEL = "walletql_events"


def notification(event: TransactionEvent) -> str:
    """The NOTIFY payload: ids and the event itself, well under PostgreSQL's 8000 bytes."""
    head, tail = _notification_around_user_seq(
        event.transaction_id, event.user_id, event.seq, event.status, event.reason, event.at
    )
    return f"{head}{event.user_seq}{tail}"


def _notification_around_user_seq(
    tx_id: uuid.UUID, user_id: uuid.UUID, seq: int, status: str, reason: str | None, at: datetime
) -> tuple[str, str]:
    """The payload's text before and after its ``useq``: the JSON object
    {"tx", "user", "seq", "useq", "status", "reason", "at"}, which the database completes
    when it hands out the number in the same statement (a first event)."""
    head = json.dumps({"tx": str(tx_id), "user": str(user_id), "seq": seq})
    tail = json.dumps(
        {"status": status, "reason": (reason or "")[:1000] or None, "at": at.isoformat()}
    )
    return f'{head[:-1]}, "useq": ', f", {tail[1:]}"


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


async def record_first_event(uow: UnitOfWork, tx: Transaction) -> None:
    """The first event of a transaction just inserted (on the unit's driver connection) with
    its status and ``last_seq`` 1: the event, user_seq and NOTIFY ``record_event`` writes,
    in one statement and none of the ORM's."""
    driver = await uow.driver_in_transaction()
    at, status = datetime.now(UTC), tx.status
    payload = _notification_around_user_seq(tx.id, tx.user_id, tx.last_seq, status, None, at)
    # The user's row lock orders this user's events by commit, as in record_event.
    await insert_event(
        driver, (tx.id, tx.user_id, tx.last_seq, status.value, None, at), CHANNEL, payload
    )
    _count_after_commit(uow, status)


def _count_after_commit(uow: UnitOfWork, status: TransactionStatus) -> None:
    async def count() -> None:
        metrics.count_status_change(status.value)

    uow.after_commit(count)  # counted once committed: a rollback changed nothing
