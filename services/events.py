"""Status changes: every change of a transaction appends an event with the next ``seq``,
and a notification that PostgreSQL delivers to every listening API process at commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from db.models import Transaction, TransactionEvent, User
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

    async def count() -> None:
        metrics.count_status_change(status.value)

    uow.after_commit(count)  # counted once committed: a rollback changed nothing
    # NOTIFY inside the transaction: PostgreSQL delivers it only if, and when, we commit.
    await uow.session.execute(select(func.pg_notify(CHANNEL, notification(event))))
    return event
