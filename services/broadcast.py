"""One look at one transaction (a ``Step``), and sending one of its pre-signed attempts to
the node: what the node's answer means for the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from db.models import Transaction, TransactionAttempt
from db.unit_of_work import UnitOfWork
from services.chains import Chain, NodeRejected
from services.domain import AttemptKind

_ALREADY_SENT = ("already known", "known transaction", "already imported", "already in pool")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce", "nonce is too low")


class Outcome(Enum):
    SENT = "SENT"  # accepted now, or the node already had these exact bytes
    NONCE_USED = "NONCE_USED"  # something with this nonce is already mined
    REJECTED = "REJECTED"


@dataclass
class Step:
    uow: UnitOfWork
    tx: Transaction
    chain: Chain
    attempts: dict[tuple[AttemptKind, int], TransactionAttempt]
    now: datetime

    def attempt(self, kind: AttemptKind, rung: int) -> TransactionAttempt | None:
        return self.attempts.get((kind, rung))


async def broadcast(step: Step, attempt: TransactionAttempt) -> tuple[Outcome, str]:
    """Send the attempt's stored bytes; (outcome, the node's message when not SENT)."""
    try:
        await step.chain.send_raw_transaction(attempt.raw)
    except NodeRejected as exc:
        message = str(exc)
        lowered = message.lower()
        if any(text in lowered for text in _ALREADY_SENT):
            outcome = Outcome.SENT
        elif any(text in lowered for text in _NONCE_USED):
            return Outcome.NONCE_USED, message
        else:
            return Outcome.REJECTED, message
    else:
        outcome = Outcome.SENT
    if attempt.sent_at is None:
        attempt.sent_at = step.now  # every hash we send is recorded
    return outcome, ""
