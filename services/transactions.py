"""Submitting transactions and reading them back. The worker (services/pipeline.py) does
the broadcasting; this service stores a fully pre-signed transaction and enqueues it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Transaction, TransactionAttempt, TransactionEvent
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.chains import Chain, Chains
from services.domain import TransactionStatus
from services.errors import (
    BadUserInput,
    ChainUnavailable,
    IdempotencyConflict,
    NotFound,
)
from services.events import record_event
from services.ladder import Rung, build_ladder
from services.nonces import lock_next_nonce
from services.pipeline import TransactionProcessor
from services.queues import Queue
from services.token_transfers import encode_transfer
from services.transactions_build import MIN_GAS, FeeCaps, TxRequest, fee_caps, fill_affordable
from services.users import user_id_of
from services.validation import check_text
from services.wallets import Unlocked, WalletService

MAX_PAGE = 100


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


def encode_cursor(tx: Transaction) -> str:
    return base64.urlsafe_b64encode(f"{tx.created_at.isoformat()}|{tx.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, _, tx_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(created)
        # Ours are timezone-aware and recent; an extreme date would overflow in the database.
        if at.tzinfo is None or not 1970 < at.astimezone(UTC).year < 9000:
            raise ValueError("not one of our timestamps")
        return at, uuid.UUID(tx_id)
    except (ValueError, OverflowError, IndexError) as exc:
        raise BadUserInput("not a cursor returned by this API", field="after") from exc


class TransactionService:
    def __init__(
        self,
        wallets: WalletService,
        chains: Chains,
        queue: Queue,
        processor: TransactionProcessor,
        *,
        bump_rungs: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._wallets = wallets
        self._chains = chains
        self._queue = queue
        self._processor = processor
        self._rungs = bump_rungs
        self._clock = clock

    async def submit(
        self, uow: UnitOfWork, principal: Principal, req: TxRequest, password: str
    ) -> Transaction:
        """Sign the transaction and its fee ladder, store it QUEUED, enqueue it after commit.

        The KDF, the chain calls and the signing happen first, with no connection held; under
        the wallet's nonce lock, only the nonce is reserved (re-signing if the chain's count
        was behind ours) and the rows are stored."""
        if req.idempotency_key is not None and not 1 <= len(req.idempotency_key) <= 255:
            raise BadUserInput(
                "idempotencyKey must have 1 to 255 characters", field="idempotencyKey"
            )
        if req.idempotency_key is not None:
            check_text(req.idempotency_key, field="idempotencyKey")
        chain = self._chains.get(req.chain_id)
        fingerprint = req.fingerprint(chain.chain_id)
        unlocked = await self._wallets.unlock(uow, principal, password)
        if req.idempotency_key:  # a retry: answer it before any chain call
            async with uow.read() as session:
                found = await self._idempotent(session, principal, req.idempotency_key, fingerprint)
            if found:
                return found
        address = unlocked.wallet.address
        chain_next = await chain.pending_nonce(address)
        fields = await fill_affordable(
            chain, address, TxRequest(**{**asdict(req), "nonce": chain_next})
        )
        ladder = build_ladder(fields, unlocked.key, address, self._rungs)

        nonce_row = await lock_next_nonce(uow.session, unlocked.wallet, chain.chain_id, chain_next)
        # The lock serialises this wallet's submits: a concurrent twin may have committed.
        if req.idempotency_key and (
            existing := await self._idempotent(
                uow.session, principal, req.idempotency_key, fingerprint
            )
        ):
            return existing
        if nonce_row.next_nonce != chain_next:  # our own submits are ahead of the chain's count
            fields = {**fields, "nonce": nonce_row.next_nonce}
            ladder = build_ladder(fields, unlocked.key, address, self._rungs)
        tx = await self._store(uow, principal, req, fingerprint, chain, unlocked, fields, ladder)
        nonce_row.next_nonce = tx.nonce + 1
        await uow.session.flush()
        return tx

    async def _store(
        self, uow: UnitOfWork, principal: Principal, req: TxRequest, fingerprint: str,
        chain: Chain, unlocked: Unlocked, fields: dict[str, Any], ladder: list[Rung],
    ) -> Transaction:  # fmt: skip
        wallet, now = unlocked.wallet, self._clock()
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
            next_check_at=now, last_seq=0,
        )  # fmt: skip
        try:
            async with uow.session.begin_nested():
                uow.session.add(tx)
                await uow.session.flush()
        except IntegrityError:
            existing = await self._idempotent(
                uow.session, principal, req.idempotency_key or "", fingerprint
            )
            if existing is None:
                raise
            return existing
        for rung in ladder:
            uow.session.add(
                TransactionAttempt(
                    transaction_id=tx.id, kind=rung.kind, rung=rung.rung, raw=rung.raw,
                    hash=rung.hash, max_fee_per_gas=rung.fields.get("maxFeePerGas"),
                    max_priority_fee_per_gas=rung.fields.get("maxPriorityFeePerGas"),
                    gas_price=rung.fields.get("gasPrice"),
                )
            )  # fmt: skip
        await record_event(uow, tx, TransactionStatus.QUEUED)
        enqueue_after_commit(uow, self._queue, tx)
        return tx

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
        self, session: AsyncSession, principal: Principal, key: str, fingerprint: str
    ) -> Transaction | None:
        users_tx = await user_id_of(session, principal)
        if users_tx is None:
            return None
        existing = await TransactionRepository.from_session(session).by_idempotency_key(
            users_tx, key
        )
        if existing is None:
            return None
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this idempotencyKey was used with different input", field="idempotencyKey"
            )
        return existing

    async def get(
        self, uow: UnitOfWork, principal: Principal, tx_id: str, *, lock: bool = False
    ) -> Transaction:
        """One of the caller's transactions (row-locked in the unit's transaction if asked);
        anyone else's is NOT_FOUND."""
        parsed = _parse_id(tx_id)
        if lock:
            tx = await self._get(uow.session, principal, parsed, lock=True)
        else:
            async with uow.read() as session:
                tx = await self._get(session, principal, parsed, lock=False)
        if tx is None:
            raise NotFound("no such transaction")
        return tx

    async def _get(
        self, session: AsyncSession, principal: Principal, tx_id: uuid.UUID, *, lock: bool
    ) -> Transaction | None:
        user_id = await user_id_of(session, principal)
        if user_id is None:
            return None
        repo = TransactionRepository.from_session(session)
        if lock:
            return await repo.lock(tx_id, user_id=user_id)
        return await repo.get(tx_id, user_id=user_id)

    async def page(
        self,
        uow: UnitOfWork,
        principal: Principal,
        *,
        first: int,
        after: str | None,
        status: TransactionStatus | None,
    ) -> tuple[list[Transaction], bool]:
        """Newest first; returns (rows, has_next_page)."""
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
        cursor = decode_cursor(after) if after else None
        async with uow.read() as session:
            user_id = await user_id_of(session, principal)
            if user_id is None:
                return [], False
            rows = await TransactionRepository.from_session(session).page(
                user_id, first=first + 1, after=cursor, status=status
            )
        return rows[:first], len(rows) > first

    async def speed_up(self, uow: UnitOfWork, principal: Principal, tx_id: str) -> Transaction:
        """Send the next rung of the fee ladder now."""
        tx = await self.get(uow, principal, tx_id, lock=True)
        await self._processor.speed_up(uow, tx)
        return tx

    async def cancel(self, uow: UnitOfWork, principal: Principal, tx_id: str) -> Transaction:
        """Send the cancel; the transaction becomes CANCELLED if the cancel is mined."""
        tx = await self.get(uow, principal, tx_id, lock=True)
        await self._processor.cancel(uow, tx)
        enqueue_after_commit(uow, self._queue, tx)
        return tx

    async def events_of(
        self, uow: UnitOfWork, tx_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[TransactionEvent]]:
        """Every event of each transaction, oldest first: one query for all of them."""
        return await _rows_of(uow, tx_ids, TransactionRepository.events_of)

    async def attempts_of(
        self, uow: UnitOfWork, tx_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[TransactionAttempt]]:
        """Every pre-signed variant of each transaction, sent or not: one query for all."""
        return await _rows_of(uow, tx_ids, TransactionRepository.attempts_of)

    async def block_numbers(self, chain_ids: list[int]) -> dict[int, int | None]:
        """The latest block of each chain (None where the chain does not answer)."""
        latest: dict[int, int | None] = {}
        for chain_id in set(chain_ids):
            try:
                latest[chain_id] = await self._chains.get(chain_id).block_number()
            except ChainUnavailable:
                latest[chain_id] = None
        return latest


R = TypeVar("R", TransactionAttempt, TransactionEvent)


async def _rows_of(
    uow: UnitOfWork,
    tx_ids: list[uuid.UUID],
    query: Callable[[TransactionRepository, list[uuid.UUID]], Awaitable[list[R]]],
) -> dict[uuid.UUID, list[R]]:
    """Rows of several transactions in one read, by transaction (each key present)."""
    async with uow.read() as session:
        rows = await query(TransactionRepository.from_session(session), tx_ids)
    found: dict[uuid.UUID, list[R]] = {tx_id: [] for tx_id in tx_ids}
    for row in rows:
        found[row.transaction_id].append(row)
    return found


def sent_attempts(attempts: list[TransactionAttempt]) -> list[TransactionAttempt]:
    """The variants that were broadcast, in the order they were sent."""
    sent = [a for a in attempts if a.sent_at is not None]
    return sorted(sent, key=lambda a: a.sent_at or datetime.min)


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadUserInput("not a transaction id", field="id") from exc
