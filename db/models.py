"""SQLAlchemy models. GraphQL types are separate: see ``schema/``.

No ``from __future__ import annotations`` here: with string annotations SQLAlchemy compiles
and evaluates each ``Mapped[...]`` again at import (two ``eval`` per column, ~1/3 of this
module's ~30 ms); evaluated by Python they cost next to nothing.
"""

import enum
import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.domain import AttemptKind, CancelReason, TransactionStatus

E = TypeVar("E", bound=enum.StrEnum)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Wei amounts go up to 2**256 - 1: 78 decimal digits.
Wei = Numeric(78, 0)


class EnumText(TypeDecorator[E]):
    """A domain enum stored as its value in a VARCHAR column (what the migrations created)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class TimestampMixin:
    # Read server-side defaults back with RETURNING, so objects stay usable after commit.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


_STATUS_CHECK = "status IN (" + ", ".join(f"'{s.value}'" for s in TransactionStatus) + ")"
_KIND_CHECK = "kind IN (" + ", ".join(f"'{k.value}'" for k in AttemptKind) + ")"


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_lower", func.lower(text("username")), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    sub: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    username: Mapped[str | None] = mapped_column(String(64))
    # The last per-user event number handed out (see TransactionEvent.user_seq).
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


class Wallet(TimestampMixin, Base):
    """One embedded wallet per user. The private key is stored only encrypted."""

    __tablename__ = "wallets"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    address: Mapped[str] = mapped_column(String(42), unique=True, nullable=False)
    # AES-256-GCM ciphertext (with tag) of the 32-byte secp256k1 key.
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # KDF parameters are stored per record so they can be raised for new records.
    kdf: Mapped[str] = mapped_column(String(16), nullable=False)
    kdf_memory_kib: Mapped[int] = mapped_column(Integer, nullable=False)
    kdf_iterations: Mapped[int] = mapped_column(Integer, nullable=False)
    kdf_lanes: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class NonceState(TimestampMixin, Base):
    """Next nonce per (wallet, chain); its row lock serialises concurrent submits."""

    __tablename__ = "nonce_states"

    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("wallets.id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Transaction(TimestampMixin, Base):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(_STATUS_CHECK, name="status"),
        UniqueConstraint("wallet_id", "chain_id", "nonce", name="uq_transactions_wallet_nonce"),
        Index(
            "uq_transactions_idempotency",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_transactions_user_created", "user_id", "created_at", "id"),
        Index("ix_transactions_status_updated", "status", "updated_at"),
        Index(
            "ix_transactions_tracking_next_check",
            "next_check_at",
            postgresql_where=text("tracking"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    wallet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("wallets.id", ondelete="CASCADE"), nullable=False
    )
    chain_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[TransactionStatus] = mapped_column(
        EnumText(TransactionStatus, 16), nullable=False
    )
    from_address: Mapped[str] = mapped_column(String(42), nullable=False)
    to_address: Mapped[str | None] = mapped_column(String(42))
    value: Mapped[int] = mapped_column(Wei, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, default=b"")
    nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tx_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    gas_limit: Mapped[int] = mapped_column(Wei, nullable=False)
    max_fee_per_gas: Mapped[int | None] = mapped_column(Wei)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(Wei)
    gas_price: Mapped[int | None] = mapped_column(Wei)
    # The rung of the pre-signed fee ladder last broadcast (see TransactionAttempt).
    current_rung: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Set once a cancel (the 0-value self-send for the same nonce) has been broadcast.
    cancel_rung: Mapped[int | None] = mapped_column(Integer)
    cancel_reason: Mapped[CancelReason | None] = mapped_column(EnumText(CancelReason, 32))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # False once the worker has nothing left to do (final status, nonce settled).
    tracking: Mapped[bool] = mapped_column(nullable=False, server_default=text("true"))
    last_bump_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    gas_used: Mapped[int | None] = mapped_column(Wei)
    effective_gas_price: Mapped[int | None] = mapped_column(Wei)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class TransactionAttempt(Base):
    """One pre-signed variant of a transaction: the original, a fee bump or the cancel."""

    __tablename__ = "transaction_attempts"
    __table_args__ = (CheckConstraint(_KIND_CHECK, name="kind"),)

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[AttemptKind] = mapped_column(EnumText(AttemptKind, 8), primary_key=True)
    rung: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[str] = mapped_column(String(66), nullable=False, index=True)
    max_fee_per_gas: Mapped[int | None] = mapped_column(Wei)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(Wei)
    gas_price: Mapped[int | None] = mapped_column(Wei)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TransactionEvent(Base):
    """Append-only log of status changes; ``id`` orders events across transactions."""

    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    __tablename__ = "transaction_events"
    __table_args__ = (
        UniqueConstraint("transaction_id", "seq", name="uq_transaction_events_tx_seq"),
        CheckConstraint(_STATUS_CHECK, name="status"),
        Index("ix_transaction_events_user_id_id", "user_id", "id"),
        UniqueConstraint("user_id", "user_seq", name="uq_transaction_events_user_seq"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    # Per user, in commit order: taken from users.event_seq under that row's lock, so a
    # subscriber resuming "after user_seq N" can never miss a later-committed event.
    user_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[TransactionStatus] = mapped_column(
        EnumText(TransactionStatus, 16), nullable=False
    )
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class PasswordFailure(Base):
    """A failed password attempt. Kept in the database so the limit holds across processes."""

    __tablename__ = "password_failures"
    __table_args__ = (Index("ix_password_failures_user_at", "user_id", "failed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    failed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class QueueMessage(Base):
    """The PostgreSQL queue: one row per message, claimed with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "queue_messages"
    __table_args__ = (Index("ix_queue_messages_queue_visible", "queue", "visible_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(80), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    visible_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    receive_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    receipt: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class QueueDeadLetter(Base):
    """Messages that were received too often without being processed."""

    __tablename__ = "queue_dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(80), nullable=False)
    message_id: Mapped[str] = mapped_column(String(128), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    receive_count: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    dead_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
