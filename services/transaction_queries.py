"""Reading transactions back: one, a page (cursor pagination), and the per-row fields of many
in one read each (the DataLoaders' batches)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Transaction, TransactionAttempt, TransactionEvent
from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.chains import Chains
from services.domain import TransactionStatus
from services.errors import BadUserInput, ChainUnavailable, NotFound
from services.users import user_id_of

MAX_PAGE = 100


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


class TransactionQueries:
    def __init__(self, chains: Chains) -> None:
        self._chains = chains

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
