"""SQL for transactions, their pre-signed attempts and their events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Transaction, TransactionAttempt, TransactionEvent
from services.domain import AttemptKind, CancelReason, TransactionStatus


class TransactionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> TransactionRepository:
        return cls(session)

    async def get(
        self, tx_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> Transaction | None:
        stmt = select(Transaction).where(Transaction.id == tx_id)
        if user_id is not None:
            stmt = stmt.where(Transaction.user_id == user_id)
        return (await self.session.scalars(stmt)).first()

    async def lock(
        self, tx_id: uuid.UUID, *, skip_locked: bool = False, user_id: uuid.UUID | None = None
    ) -> Transaction | None:
        """The row, locked FOR UPDATE (None if missing, or held elsewhere with skip_locked)."""
        stmt = select(Transaction).where(Transaction.id == tx_id)
        if user_id is not None:
            stmt = stmt.where(Transaction.user_id == user_id)
        stmt = stmt.with_for_update(skip_locked=skip_locked).execution_options(
            populate_existing=True
        )
        return (await self.session.scalars(stmt)).first()

    async def by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Transaction | None:
        stmt = select(Transaction).where(
            Transaction.user_id == user_id, Transaction.idempotency_key == key
        )
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: TransactionStatus | None,
    ) -> list[Transaction]:
        """Newest first; ``after`` is the (created_at, id) of the last row of the page before."""
        stmt = select(Transaction).where(Transaction.user_id == user_id)
        if status is not None:
            stmt = stmt.where(Transaction.status == status)
        if after is not None:
            created, last_id = after
            stmt = stmt.where(
                or_(
                    Transaction.created_at < created,
                    and_(Transaction.created_at == created, Transaction.id < last_id),
                )
            )
        stmt = stmt.order_by(Transaction.created_at.desc(), Transaction.id.desc()).limit(first)
        return list(await self.session.scalars(stmt))

    async def attempts(self, tx_id: uuid.UUID) -> dict[tuple[AttemptKind, int], TransactionAttempt]:
        stmt = select(TransactionAttempt).where(TransactionAttempt.transaction_id == tx_id)
        return {(a.kind, a.rung): a for a in await self.session.scalars(stmt)}

    async def attempts_of(self, tx_ids: list[uuid.UUID]) -> list[TransactionAttempt]:
        """Every attempt of several transactions, each transaction's in ladder order."""
        stmt = (
            select(TransactionAttempt)
            .where(TransactionAttempt.transaction_id.in_(tx_ids))
            .order_by(
                TransactionAttempt.transaction_id,
                TransactionAttempt.rung,
                TransactionAttempt.kind.desc(),
            )
        )
        return list(await self.session.scalars(stmt))

    async def events(
        self, tx_id: uuid.UUID, after_seq: int = 0, limit: int | None = None
    ) -> list[TransactionEvent]:
        """One transaction's events after ``after_seq``, in order."""
        stmt = (
            select(TransactionEvent)
            .where(TransactionEvent.transaction_id == tx_id, TransactionEvent.seq > after_seq)
            .order_by(TransactionEvent.seq)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def events_of(self, tx_ids: list[uuid.UUID]) -> list[TransactionEvent]:
        """Every event of several transactions, each transaction's in order."""
        stmt = (
            select(TransactionEvent)
            .where(TransactionEvent.transaction_id.in_(tx_ids))
            .order_by(TransactionEvent.transaction_id, TransactionEvent.seq)
        )
        return list(await self.session.scalars(stmt))

    async def user_events(
        self, user_id: uuid.UUID, after_user_seq: int, limit: int
    ) -> list[TransactionEvent]:
        """A user's events after ``after_user_seq``, in commit order."""
        stmt = (
            select(TransactionEvent)
            .where(TransactionEvent.user_id == user_id, TransactionEvent.user_seq > after_user_seq)
            .order_by(TransactionEvent.user_seq)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def earlier_open_nonces(self, tx: Transaction) -> list[Transaction]:
        """Transactions of the same wallet and chain with a lower nonce still in the way:
        queued, or failed with a nonce that no transaction has filled yet."""
        stmt = select(Transaction).where(
            Transaction.wallet_id == tx.wallet_id,
            Transaction.chain_id == tx.chain_id,
            Transaction.nonce < tx.nonce,
            or_(
                Transaction.status == TransactionStatus.QUEUED,
                and_(
                    Transaction.cancel_reason == CancelReason.REJECTED,
                    Transaction.cancel_rung.is_(None),
                ),
            ),
        )
        return list(await self.session.scalars(stmt.order_by(Transaction.nonce)))

    async def overdue(self, before: datetime, limit: int = 500) -> list[uuid.UUID]:
        """Tracked transactions whose next check is overdue (a lost queue message)."""
        stmt = (
            select(Transaction.id)
            .where(Transaction.tracking, Transaction.next_check_at < before)
            .order_by(Transaction.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(await self.session.scalars(stmt))

    async def set_next_check(self, ids: list[uuid.UUID], at: datetime) -> None:
        if ids:
            await self.session.execute(
                update(Transaction).where(Transaction.id.in_(ids)).values(next_check_at=at)
            )
