"""One look at one transaction (a ``Step``: its attempts, which one is live, which one was
mined), and sending one of its pre-signed attempts to the node: what the node's answer means
for the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from db.models import Transaction, TransactionAttempt
from db.unit_of_work import UnitOfWork
from services.causes import clear_live_error
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

    def latest_sent(self) -> TransactionAttempt:
        """The bytes the node should hold now: the cancel once sent, else the current rung."""
        if self.tx.cancel_rung is not None:
            cancel = self.attempt(AttemptKind.CANCEL, self.tx.cancel_rung)
            assert cancel is not None
            return cancel
        send = self.attempt(AttemptKind.SEND, self.tx.current_rung)
        assert send is not None
        return send

    async def mined_receipt(
        self, *, everything: bool = False
    ) -> tuple[TransactionAttempt, dict[str, Any]] | None:
        """A receipt for one of our attempts: those we recorded as sent, or (``everything``)
        any pre-signed rung, since a broadcast may have happened without its record."""
        candidates = [a for a in self.attempts.values() if everything or a.sent_at is not None]
        cancels_first = sorted(
            candidates, key=lambda a: (a.kind is not AttemptKind.CANCEL, -a.rung)
        )
        for attempt in cancels_first:
            receipt = await self.chain.receipt(attempt.hash)
            if receipt is not None and receipt.get("blockNumber") is not None:
                return attempt, receipt
        return None


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
    clear_live_error(step.tx)  # the node holds it now: an earlier refusal is past
    return outcome, ""


def hex_of(value: Any) -> str:
    """A hash from a receipt, as 0x-hex (nodes give text; bytes are taken too)."""
    return value if isinstance(value, str) else "0x" + bytes(value).hex()
