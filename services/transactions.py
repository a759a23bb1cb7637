"""Submitting transactions and reading them back. The worker (services/pipeline.py) does
the broadcasting; this service stores a fully pre-signed transaction and enqueues it."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from db.engine import UnitOfWork
from db.models import Transaction, TransactionAttempt, TransactionEvent
from db.transactions_repo import TransactionRepository
from services.auth import Principal
from services.chains import Chain, Chains
from services.domain import TransactionStatus
from services.errors import BadUserInput, IdempotencyConflict, InsufficientFunds, NotFound
from services.events import record_event
from services.ladder import build_ladder, max_cost
from services.nonces import lock_next_nonce
from services.pipeline import TransactionProcessor
from services.queues import Queue
from services.token_transfers import encode_transfer
from services.transactions_build import MIN_GAS, FeeCaps, TxRequest, fee_caps, fill_transaction
from services.wallets import WalletService

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
class SubmitRequest:
    to: str | None  # None deploys a contract: ``data`` is its init code
    chain_id: int | None = None
    value: int = 0
    data: bytes = b""
    gas: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    idempotency_key: str | None = None

    def fingerprint(self, chain_id: int) -> str:
        """What makes two submits "the same input" for idempotency (never the password)."""
        fields = {
            **asdict(self),
            "chain_id": chain_id,
            "data": self.data.hex(),
            "to": self.to.lower() if self.to else None,
        }
        fields.pop("idempotency_key")
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


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
        self, uow: UnitOfWork, principal: Principal, req: SubmitRequest, password: str
    ) -> Transaction:
        """Sign the transaction and its fee ladder, store it QUEUED, enqueue it after commit."""
        chain = self._chains.get(req.chain_id)
        fingerprint = req.fingerprint(chain.chain_id)
        # Unlock first: no database connection is held while the KDF runs.
        unlocked = await self._wallets.unlock(uow, principal, password)
        wallet = unlocked.wallet
        nonce_row = await lock_next_nonce(uow.session, wallet, chain)
        # The lock serialises this wallet's submits: a concurrent twin may have committed.
        if req.idempotency_key and (
            existing := await self._idempotent(uow, principal, req.idempotency_key, fingerprint)
        ):
            return existing
        nonce = nonce_row.next_nonce
        tx_request = TxRequest(
            to=req.to, chain_id=chain.chain_id, value=req.value, data=req.data, gas=req.gas,
            nonce=nonce, max_fee_per_gas=req.max_fee_per_gas,
            max_priority_fee_per_gas=req.max_priority_fee_per_gas,
        )  # fmt: skip
        try:
            fields = await fill_transaction(chain, wallet.address, tx_request)
        except InsufficientFunds:
            needed = await self._needed_without_funds(chain, wallet.address, tx_request)
            raise InsufficientFunds(
                "the wallet cannot pay value + gas", needed=str(needed), field="value"
            ) from None
        balance, _ = await chain.balance(wallet.address)
        if balance < (needed := max_cost(fields)):
            raise InsufficientFunds(
                f"the wallet holds {balance} wei and needs {needed} wei (value + max gas cost)",
                needed=str(needed), available=str(balance),
            )  # fmt: skip
        ladder = build_ladder(fields, unlocked.key, wallet.address, self._rungs)
        now = self._clock()
        original = ladder[0]
        tx = Transaction(
            id=uuid.uuid4(), user_id=wallet.user_id, wallet_id=wallet.id, chain_id=chain.chain_id,
            status=TransactionStatus.QUEUED, from_address=wallet.address, to_address=req.to,
            value=req.value, data=req.data, nonce=nonce, tx_type=int(fields.get("type", 0)),
            gas_limit=fields["gas"], max_fee_per_gas=fields.get("maxFeePerGas"),
            max_priority_fee_per_gas=fields.get("maxPriorityFeePerGas"),
            gas_price=fields.get("gasPrice"), hash=original.hash, current_rung=0,
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
                uow, principal, req.idempotency_key or "", fingerprint
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
        nonce_row.next_nonce = nonce + 1
        await uow.session.flush()
        enqueue_after_commit(uow, self._queue, tx)
        return tx

    async def transfer_token(
        self, uow: UnitOfWork, principal: Principal, req: TokenTransferRequest, password: str
    ) -> Transaction:
        """An ERC-20 ``transfer(to, amount)`` of ``token``, through the same pipeline."""
        submit = SubmitRequest(
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
        self, uow: UnitOfWork, principal: Principal, key: str, fingerprint: str
    ) -> Transaction | None:
        users_tx = await self._user_id(uow, principal)
        if users_tx is None:
            return None
        existing = await TransactionRepository.from_session(uow.session).by_idempotency_key(
            users_tx, key
        )
        if existing is None:
            return None
        if existing.request_hash != fingerprint:
            raise IdempotencyConflict(
                "this idempotencyKey was used with different input", field="idempotencyKey"
            )
        return existing

    async def _user_id(self, uow: UnitOfWork, principal: Principal) -> uuid.UUID | None:
        from db.repositories import UserRepository

        profile = await UserRepository.from_session(uow.session).profile_by_sub(principal.sub)
        return profile.id if profile else None

    async def _needed_without_funds(self, chain: Chain, sender: str, req: TxRequest) -> int:
        """What the transaction would need: gas is estimated as if sending no value."""
        try:
            fields = await fill_transaction(chain, sender, TxRequest(**{**asdict(req), "value": 0}))
        except Exception:
            return req.value
        return req.value + max_cost({**fields, "value": 0})

    async def get(
        self, uow: UnitOfWork, principal: Principal, tx_id: str, *, lock: bool = False
    ) -> Transaction:
        """One of the caller's transactions (row-locked if asked); anyone else's is NOT_FOUND."""
        user_id = await self._user_id(uow, principal)
        tx = None
        if user_id is not None:
            repo = TransactionRepository.from_session(uow.session)
            parsed = _parse_id(tx_id)
            if lock:
                tx = await repo.lock(parsed, user_id=user_id)
            else:
                tx = await repo.get(parsed, user_id=user_id)
        if tx is None:
            raise NotFound("no such transaction")
        return tx

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
        user_id = await self._user_id(uow, principal)
        if user_id is None:
            return [], False
        rows = await TransactionRepository.from_session(uow.session).page(
            user_id,
            first=first + 1,
            after=decode_cursor(after) if after else None,
            status=status,
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

    async def events(self, uow: UnitOfWork, tx_id: uuid.UUID) -> list[TransactionEvent]:
        return await TransactionRepository.from_session(uow.session).events(tx_id)

    async def attempts_hashes(self, uow: UnitOfWork, tx_id: uuid.UUID) -> list[str]:
        return [a.hash for a in sent_attempts(await self.attempts(uow, tx_id))]

    async def attempts(self, uow: UnitOfWork, tx_id: uuid.UUID) -> list[TransactionAttempt]:
        """Every pre-signed variant of a transaction, sent or not."""
        found = await TransactionRepository.from_session(uow.session).attempts(tx_id)
        return list(found.values())


def sent_attempts(attempts: list[TransactionAttempt]) -> list[TransactionAttempt]:
    """The variants that were broadcast, in the order they were sent."""
    sent = [a for a in attempts if a.sent_at is not None]
    return sorted(sent, key=lambda a: a.sent_at or datetime.min)


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BadUserInput("not a transaction id", field="id") from exc
