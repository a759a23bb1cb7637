"""Submitting transactions, and the user's requests on one already sent (speed up, cancel).
The worker (services/pipeline.py) does the broadcasting; this service stores a fully
pre-signed transaction and enqueues it. Reading them back: services/transaction_queries.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Transaction, Wallet
from db.submissions import insert_transaction, twin_id
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.chains import Chain, Chains
from services.domain import TransactionStatus
from services.errors import (
    BadUserInput,
    IdempotencyConflict,
)
from services.events import record_first_event
from services.ladder import Rung, build_ladder
from services.nonces import lock_next_nonce
from services.pipeline import TransactionProcessor
from services.queues import Queue
from services.token_transfers import encode_transfer
from services.transaction_queries import TransactionQueries
from services.transactions_build import (
    MIN_GAS,
    FeeCaps,
    TxRequest,
    fee_caps,
    fill_affordable,
    read_ahead,
)
from services.validation import check_text
from services.wallets import WalletService


@dataclass(frozen=True)
class FeeEstimate:
    chain_id: int
    gas: int
    caps: FeeCaps

    @property
    def max_cost(self) -> int:
        """The most the gas can cost at these caps (value not included)."""
        return self.gas * self.caps.price_cap


@dataclass(frozen=True)
class TokenTransferRequest:
    token: str
    to: str
    amount: int
    chain_id: int | None = None
    idempotency_key: str | None = None


def enqueue_after_commit(uow: UnitOfWork, queue: Queue, tx: Transaction) -> None:
    """Send the transaction's id once the data is committed (FIFO: one group per wallet)."""
    body, group, dedup = str(tx.id), f"{tx.chain_id}:{tx.wallet_id}", f"{tx.id}:{tx.last_seq}"
    uow.after_commit(lambda: queue.send(body, group_id=group, dedup_id=dedup))


class TransactionService:
    def __init__(
        self,
        wallets: WalletService,
        chains: Chains,
        queue: Queue,
        processor: TransactionProcessor,
        queries: TransactionQueries,
        *,
        bump_rungs: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._wallets = wallets
        self._chains = chains
        self._queue = queue
        self._processor = processor
        self._queries = queries
        self._rungs = bump_rungs
        self._clock = clock

    async def submit(
        self, uow: UnitOfWork, principal: Principal, req: TxRequest, password: str
    ) -> Transaction:
        """Sign the transaction and its fee ladder, store it QUEUED, enqueue it after commit.

        The KDF, the chain calls (one batch) and the signing happen first, with no connection
        held, for the nonce the lock most likely hands out; under the wallet's nonce lock,
        only the nonce is reserved (re-signing if another submit took that one meanwhile)
        and the rows are stored."""
        if req.idempotency_key is not None and not 1 <= len(req.idempotency_key) <= 255:
            raise BadUserInput(
                "idempotencyKey must have 1 to 255 characters", field="idempotencyKey"
            )
        if req.idempotency_key is not None:
            check_text(req.idempotency_key, field="idempotencyKey")
        chain = self._chains.get(req.chain_id)
        fingerprint = req.fingerprint(chain.chain_id)
        unlocked = await self._wallets.unlock(
            uow, principal, password, nonce_chain_id=chain.chain_id
        )
        wallet = unlocked.wallet
        if req.idempotency_key:  # a retry: answer it before any chain call
            async with uow.driver() as driver:
                twin = await twin_id(driver, wallet.user_id, req.idempotency_key)
            if twin is not None:
                async with uow.read() as session:
                    found = await self._idempotent(
                        session, wallet.user_id, req.idempotency_key, fingerprint
                    )
                if found:
                    return found
        address = wallet.address
        ahead = await read_ahead(chain, address, req, pending_nonce=True)
        chain_next = await ahead.pending_nonce(address)
        # Sign for the nonce the lock will most likely hand out: the wallet's own submits
        # may be ahead of the chain's count.
        expected = max(chain_next, unlocked.next_nonce or 0)
        fields = await fill_affordable(ahead, address, replace(req, nonce=expected))
        # Twelve signatures or so: off the event loop, like the KDF.
        ladder = await asyncio.to_thread(build_ladder, fields, unlocked.key, address, self._rungs)

        driver = await uow.driver_in_transaction()
        nonce = await lock_next_nonce(driver, wallet.id, chain.chain_id, chain_next)
        if nonce.next_nonce != expected:  # another submit took it meanwhile
            fields = {**fields, "nonce": nonce.next_nonce}
            ladder = await asyncio.to_thread(
                build_ladder, fields, unlocked.key, address, self._rungs
            )
        tx, stored = await self._store(uow, driver, req, fingerprint, chain, wallet, fields, ladder)
        if stored:
            await nonce.take(tx.nonce)
        else:  # a concurrent twin with the same idempotency key committed first
            await nonce.keep()
        return tx

    async def _store(
        self, uow: UnitOfWork, driver: Any, req: TxRequest, fingerprint: str, chain: Chain,
        wallet: Wallet, fields: dict[str, Any], ladder: list[Rung],
    ) -> tuple[Transaction, bool]:  # fmt: skip
        """(the transaction QUEUED with its ladder and first event, enqueued after commit,
        True); or (the twin a concurrent submit with the same idempotency key committed
        first, False)."""
        now = self._clock()
        tx = Transaction(
            id=uuid.uuid4(), user_id=wallet.user_id, wallet_id=wallet.id, chain_id=chain.chain_id,
            status=TransactionStatus.QUEUED, from_address=wallet.address, to_address=req.to,
            value=req.value, data=req.data, nonce=int(fields["nonce"]),
            tx_type=int(fields.get("type", 0)), gas_limit=fields["gas"],
            max_fee_per_gas=fields.get("maxFeePerGas"),
            max_priority_fee_per_gas=fields.get("maxPriorityFeePerGas"),
            gas_price=fields.get("gasPrice"), hash=ladder[0].hash, current_rung=0,
            idempotency_key=req.idempotency_key, request_hash=fingerprint,
            deadline_at=now + timedelta(seconds=chain.config.deadline_seconds),
            next_check_at=now, last_seq=1,  # its first event (QUEUED) is written below
        )  # fmt: skip
        attempts = [
            (
                rung.kind.value, rung.rung, rung.raw, rung.hash, rung.fields.get("maxFeePerGas"),
                rung.fields.get("maxPriorityFeePerGas"), rung.fields.get("gasPrice"),
            )
            for rung in ladder
        ]  # fmt: skip
        if not await insert_transaction(driver, tx, attempts):
            # The insert waited for the twin's commit: a fresh read sees it.
            async with uow.read() as session:
                existing = await self._idempotent(
                    session, wallet.user_id, req.idempotency_key or "", fingerprint
                )
            if existing is None:  # the twin is gone again: nothing to answer with
                raise RuntimeError("an idempotency key conflicted with no transaction")
            return existing, False
        await record_first_event(uow, tx)
        enqueue_after_commit(uow, self._queue, tx)
        return tx, True

    async def transfer_token(
        self, uow: UnitOfWork, principal: Principal, req: TokenTransferRequest, password: str
    ) -> Transaction:
        """An ERC-20 ``transfer(to, amount)`` of ``token``, through the same pipeline."""
        submit = TxRequest(
            to=req.token, chain_id=req.chain_id, data=encode_transfer(req.to, req.amount),
            idempotency_key=req.idempotency_key,
        )  # fmt: skip
        return await self.submit(uow, principal, submit, password)

    async def estimate_fees(self, chain_id: int | None, gas: int) -> FeeEstimate:
        """The fee caps a submit would use now, and the most ``gas`` units could cost."""
        if gas < MIN_GAS:
            raise BadUserInput(f"gas must be at least {MIN_GAS}", field="gas")
        chain = self._chains.get(chain_id)
        caps = await fee_caps(chain, await chain.latest_block(), TxRequest(to=None))
        return FeeEstimate(chain.chain_id, gas, caps)

    async def _idempotent(
        self, session: AsyncSession, user_id: uuid.UUID, key: str, fingerprint: str
    ) -> Transaction | None:
        existing = await TransactionRepository.from_session(session).by_idempotency_key(
            user_id, key
        )
        if existing is None:
            return None
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this idempotencyKey was used with different input", field="idempotencyKey"
            )
        return existing

    async def speed_up(self, uow: UnitOfWork, principal: Principal, tx_id: str) -> Transaction:
        """Send the next rung of the fee ladder now."""
        tx = await self._queries.get(uow, principal, tx_id, lock=True)
        await self._processor.speed_up(uow, tx)
        return tx

    async def cancel(self, uow: UnitOfWork, principal: Principal, tx_id: str) -> Transaction:
        """Send the cancel; the transaction becomes CANCELLED if the cancel is mined."""
        tx = await self._queries.get(uow, principal, tx_id, lock=True)
        await self._processor.cancel(uow, tx)
        enqueue_after_commit(uow, self._queue, tx)
        return tx
