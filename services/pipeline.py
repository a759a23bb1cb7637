"""The worker's side of a transaction: broadcast the stored bytes and follow them to a final
status. Idempotent: each call locks the row, looks at the chain, and moves the state forward.
Nothing here waits in place; the caller re-enqueues the id with the returned delay."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from db.models import Transaction, TransactionAttempt
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services import metrics
from services.broadcast import Outcome, Step, broadcast, hex_of
from services.causes import (
    CANCEL_REFUSED,
    FEE_BUMP_REFUSED,
    NONCE_GAP,
    REJECTED,
    RETRYING,
    clear_live_error,
    last_error,
    note,
    words,
)
from services.chains import Chains
from services.domain import AttemptKind, CancelReason, TransactionStatus
from services.errors import BadUserInput
from services.events import record_event

S = TransactionStatus
SEND, CANCEL = AttemptKind.SEND, AttemptKind.CANCEL

# A message arriving this much before the transaction's next look is a duplicate.
_EARLY = timedelta(seconds=1)


class TransactionProcessor:
    """Advances transactions inside the caller's unit of work (one per queue message, opened
    by ``worker/``). The row lock taken here is the worker's claim on the transaction: it is
    held through the chain calls on purpose, and SKIP LOCKED means nobody waits on it."""

    def __init__(
        self,
        chains: Chains,
        *,
        check_interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._chains = chains
        self._interval = check_interval
        self._clock = clock

    @property
    def unavailable_delay(self) -> float:
        """When to look again after the chain did not answer."""
        return self._interval * 2

    async def process(self, uow: UnitOfWork, tx_id: uuid.UUID) -> float | None:
        """Advance one transaction; seconds until it needs another look, or None when done.
        Raises ChainUnavailable (the caller rolls back and retries after
        ``unavailable_delay``)."""
        repo = TransactionRepository.from_session(uow.session)
        tx = await repo.lock(tx_id, skip_locked=True)
        if tx is None or not tx.tracking:
            # Gone, finished, or held by another worker, which schedules the next look.
            return None
        now = self._clock()
        if tx.next_check_at is not None and tx.next_check_at > now + _EARLY:
            # A duplicate: another message already owns the next, later look.
            return None
        if tx.next_check_at is not None:
            metrics.WORKER_LAG.observe(max(0.0, (now - tx.next_check_at).total_seconds()))
        clear_live_error(tx, frozenset({RETRYING}))  # this look gets through, or rolls back
        step = await self._step(uow, tx)
        delay = await self._advance(step)
        tx.tracking = delay is not None
        tx.next_check_at = step.now + timedelta(seconds=delay) if delay is not None else None
        return delay

    async def dead_letter(self, uow: UnitOfWork, tx_id: uuid.UUID, reason: str) -> str:
        """A message for this transaction failed too often: fail it, stop tracking it. Returns
        the reason with the last error seen, which the dead letter carries too."""
        tx = await TransactionRepository.from_session(uow.session).lock(tx_id)
        if tx is None:
            return reason
        if last := last_error(tx):
            reason = f"{reason}; last error: {last}"
        if not tx.status.is_final:
            tx.error_code, tx.error_message = "DEAD_LETTER", reason
            await record_event(uow, tx, S.FAILED, f"DEAD_LETTER: {reason}")
        tx.tracking = False
        return reason

    async def note_retry(
        self, uow: UnitOfWork, tx_id: uuid.UUID, cause: str, *, unless_told: bool = False
    ) -> None:
        """A look at this transaction failed and will be tried again: tell its owner why
        (``unless_told``: not when a failed look is already its error)."""
        tx = await TransactionRepository.from_session(uow.session).lock(tx_id, skip_locked=True)
        if tx is None or not tx.tracking or tx.status.is_final:
            return
        if not (unless_told and tx.error_code == RETRYING):
            await note(uow, tx, RETRYING, cause, error=True)

    async def _step(self, uow: UnitOfWork, tx: Transaction) -> Step:
        attempts = await TransactionRepository.from_session(uow.session).attempts(tx.id)
        return Step(uow, tx, self._chains.get(tx.chain_id), attempts, self._clock())

    async def speed_up(self, uow: UnitOfWork, tx: Transaction) -> None:
        """Broadcast the next rung of the fee ladder now (the row is locked by the caller)."""
        step = await self._step(uow, tx)
        next_rung = step.attempt(SEND, tx.current_rung + 1)
        if tx.status is not S.SUBMITTED or tx.cancel_rung is not None:
            raise BadUserInput(
                "only a submitted transaction that is not being cancelled can be sped up",
                field="id",
            )
        if next_rung is None:
            raise BadUserInput("the fee ladder has no higher rung", field="id")
        outcome, message = await broadcast(step, next_rung)
        if outcome is not Outcome.SENT:
            raise BadUserInput(f"the node refused the faster transaction: {message}", field="id")
        tx.current_rung, tx.hash, tx.last_bump_at = next_rung.rung, next_rung.hash, step.now
        await record_event(uow, tx, S.SUBMITTED, f"FEE_BUMP: rung {next_rung.rung} (requested)")

    async def cancel(self, uow: UnitOfWork, tx: Transaction) -> None:
        """Broadcast the cancel that outbids the current rung (the row is locked by the caller)."""
        if tx.status not in (S.QUEUED, S.SUBMITTED) or tx.cancel_rung is not None:
            raise BadUserInput(
                "only a queued or submitted transaction can be cancelled", field="id"
            )
        step = await self._step(uow, tx)
        outcome, message = await self._send_cancel(step, CancelReason.USER)
        if outcome is not Outcome.SENT:
            refusal = words(message) if message else "already mined?"
            raise BadUserInput(f"the node refused the cancel ({refusal})", field="id")
        if tx.submitted_at is None:
            tx.submitted_at = step.now
        tx.next_check_at = step.now

    async def _advance(self, step: Step) -> float | None:
        status = step.tx.status
        if status is S.QUEUED:
            return await self._start(step)
        if status is S.SUBMITTED:
            return await self._follow_pending(step)
        if status is S.MINED:
            return await self._follow_mined(step)
        if status is S.FAILED and step.tx.cancel_reason is CancelReason.REJECTED:
            return await self._fill_nonce(step)
        return None

    async def _start(self, step: Step) -> float | None:
        tx = step.tx
        repo = TransactionRepository.from_session(step.uow.session)
        blockers = await repo.earlier_open_nonces(tx)
        gaps = [b for b in blockers if b.status is not S.QUEUED]
        if gaps:
            await self._report_gap(step, gaps[0])
            return self._interval
        if blockers and step.chain.config.embedded:
            # The in-process EVM refuses future nonces; JSON-RPC nodes queue them.
            return self._interval
        original = step.attempt(SEND, tx.current_rung)
        assert original is not None
        outcome, message = await broadcast(step, original)
        if outcome is Outcome.REJECTED:
            tx.error_code, tx.error_message = REJECTED, words(message)
            tx.cancel_reason = CancelReason.REJECTED
            await record_event(step.uow, tx, S.FAILED, f"REJECTED: {tx.error_message}")
            return await self._fill_nonce(step)
        tx.submitted_at = step.now
        await record_event(step.uow, tx, S.SUBMITTED)
        if outcome is Outcome.NONCE_USED:
            return await self._nonce_used(step, message)
        # Commit SUBMITTED now (subscribers see it at once); look for the receipt next time.
        return 0.0

    async def _report_gap(self, step: Step, gap: Transaction) -> None:
        cancel = step.attempt(CANCEL, 0)
        fee = int(cancel.max_fee_per_gas or cancel.gas_price or 0) if cancel else 0
        need = f"the wallet needs at least {21_000 * fee} wei to fill it"
        await note(step.uow, step.tx, NONCE_GAP, f"nonce {gap.nonce} is unfilled; {need}")

    async def _nonce_used(self, step: Step, message: str) -> float | None:
        """The node says the nonce is taken: by one of our rungs (mined), or by someone else,
        and then the chain will never take this transaction: it fails at once."""
        if found := await step.mined_receipt(everything=True):
            return await self._on_mined(step, *found)
        tx = step.tx
        tx.error_code = "NONCE_CONFLICT"
        tx.error_message = words(
            f"nonce {tx.nonce} was used by a transaction walletql did not send "
            f"(the node said: {message})"
        )
        await record_event(step.uow, tx, S.FAILED, f"NONCE_CONFLICT: {tx.error_message}")
        return None

    async def _follow_pending(self, step: Step) -> float | None:
        tx = step.tx
        if found := await step.mined_receipt():
            return await self._on_mined(step, *found)
        bump_base = tx.last_bump_at or tx.submitted_at or step.now
        bump_due = step.now >= bump_base + timedelta(
            seconds=step.chain.config.bump_interval_seconds
        )
        next_rung = step.attempt(SEND, tx.current_rung + 1)
        if tx.cancel_rung is None and step.now >= tx.deadline_at:
            outcome, message = await self._send_cancel(step, CancelReason.DEADLINE)
        elif tx.cancel_rung is None and bump_due and next_rung is not None:
            outcome, message = await broadcast(step, next_rung)
            if outcome is Outcome.SENT:
                tx.current_rung, tx.hash, tx.last_bump_at = next_rung.rung, next_rung.hash, step.now
                await record_event(step.uow, tx, S.SUBMITTED, f"FEE_BUMP: rung {next_rung.rung}")
            elif outcome is Outcome.REJECTED:
                await note(step.uow, tx, FEE_BUMP_REFUSED, f"rung {next_rung.rung}: {message}")
        else:
            # The node may have dropped it: send the latest bytes again.
            outcome, message = await broadcast(step, step.latest_sent())
            if outcome is Outcome.REJECTED:
                await note(step.uow, tx, REJECTED, message, error=True)
        if outcome is Outcome.NONCE_USED:
            return await self._nonce_used(step, message)
        return self._interval

    async def _send_cancel(self, step: Step, reason: CancelReason) -> tuple[Outcome, str]:
        tx = step.tx
        cancel = step.attempt(CANCEL, tx.current_rung)
        assert cancel is not None
        outcome, message = await broadcast(step, cancel)
        if outcome is not Outcome.SENT:
            if outcome is Outcome.REJECTED:
                await note(step.uow, tx, CANCEL_REFUSED, f"{reason}: {message}")
            return outcome, message
        tx.cancel_rung, tx.cancel_reason = cancel.rung, reason
        # A cancel of a queued transaction is its first broadcast: it is now submitted.
        status = S.SUBMITTED if tx.status is S.QUEUED else tx.status
        await record_event(step.uow, tx, status, f"{reason}: cancel sent")
        return outcome, ""

    async def _fill_nonce(self, step: Step) -> float | None:
        """A rejected transaction's nonce is reserved: fill it with the pre-signed cancel,
        so later transactions of the wallet are not stuck behind a gap."""
        tx = step.tx
        if tx.cancel_rung is None:
            cancel = step.attempt(CANCEL, 0)
            assert cancel is not None
            outcome, message = await broadcast(step, cancel)
            if outcome is Outcome.REJECTED:
                await note(
                    step.uow, tx, CANCEL_REFUSED,
                    f"the cancel that fills nonce {tx.nonce} for later transactions: {message}",
                )  # fmt: skip
                return self._interval
            tx.cancel_rung = 0
        found = await step.mined_receipt(everything=True)
        return None if found else self._interval

    async def _on_mined(
        self, step: Step, attempt: TransactionAttempt, receipt: dict[str, Any]
    ) -> float | None:
        tx = step.tx
        tx.hash = attempt.hash
        tx.block_number = int(receipt["blockNumber"])
        tx.block_hash = hex_of(receipt["blockHash"])
        tx.gas_used = int(receipt["gasUsed"])
        tx.effective_gas_price = int(receipt.get("effectiveGasPrice") or 0) or None
        clear_live_error(tx)  # mined: no refusal or failed look describes it now
        if attempt.kind is CANCEL:
            if tx.cancel_reason is CancelReason.REJECTED:
                return None  # the nonce is filled; the transaction had already failed
            final = S.CANCELLED if tx.cancel_reason is CancelReason.USER else S.EXPIRED
            await record_event(step.uow, tx, final, f"{tx.cancel_reason}: the cancel was mined")
            return None
        if int(receipt.get("status", 1)) == 0:
            call = {"from": tx.from_address, "to": tx.to_address, "value": int(tx.value),
                    "data": tx.data, "gas": int(tx.gas_limit)}  # fmt: skip
            reason = await step.chain.revert_reason(call, tx.block_number) or "execution reverted"
            tx.error_code, tx.error_message = "REVERTED", reason
            await record_event(step.uow, tx, S.FAILED, f"REVERTED: {reason}")
            return None
        await record_event(step.uow, tx, S.MINED)
        return await self._follow_mined(step)

    async def _follow_mined(self, step: Step) -> float | None:
        tx = step.tx
        receipt = await step.chain.receipt(tx.hash or "")
        if receipt is None or receipt.get("blockNumber") is None:
            tx.block_number = tx.block_hash = None
            await record_event(
                step.uow, tx, S.SUBMITTED, "REORG: the block holding it was replaced"
            )
            return self._interval
        tx.block_number, tx.block_hash = int(receipt["blockNumber"]), hex_of(receipt["blockHash"])
        confirmations = await step.chain.block_number() - tx.block_number + 1
        if confirmations >= step.chain.config.confirmations:
            await record_event(step.uow, tx, S.CONFIRMED)
            return None
        return self._interval
