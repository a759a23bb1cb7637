"""Status changes: every change of a transaction appends an event with the next ``seq``."""

from __future__ import annotations

from db.engine import UnitOfWork
from db.models import Transaction, TransactionEvent, TransactionStatus


def record_event(
    uow: UnitOfWork, tx: Transaction, status: TransactionStatus, reason: str | None = None
) -> TransactionEvent:
    """Set ``tx.status`` and append its event, in the caller's database transaction."""
    tx.status = status.value
    tx.last_seq += 1
    event = TransactionEvent(
        transaction_id=tx.id,
        user_id=tx.user_id,
        seq=tx.last_seq,
        status=status.value,
        reason=reason,
    )
    uow.session.add(event)
    return event
