"""The SQL of a submit, on the driver's connection of the unit's transaction
(``UnitOfWork.driver_in_transaction``): one prepared statement per step, with none of the
ORM's flush machinery. The rows are the ones the ORM models describe (``db/models.py``)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

from db.models import Transaction

_ENSURE_NONCE = (
    "INSERT INTO nonce_states (wallet_id, chain_id, next_nonce) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING"
)
_LOCK_NONCE = (
    "SELECT next_nonce FROM nonce_states WHERE wallet_id = $1 AND chain_id = $2 FOR UPDATE"
)
_SET_NONCE = (
    "UPDATE nonce_states SET next_nonce = $3, updated_at = now() "
    "WHERE wallet_id = $1 AND chain_id = $2"
)

_TRANSACTION_COLUMNS = (
    "id", "user_id", "wallet_id", "chain_id", "status", "from_address", "to_address", "value",
    "data", "nonce", "tx_type", "gas_limit", "max_fee_per_gas", "max_priority_fee_per_gas",
    "gas_price", "hash", "current_rung", "idempotency_key", "request_hash", "deadline_at",
    "next_check_at", "last_seq",
)  # fmt: skip
# A twin with the same idempotency key (the partial unique index) inserts nothing: the
# caller reads the twin. Any other conflict (the wallet's nonce) raises.
_INSERT_TRANSACTION = (
    "INSERT INTO transactions (id, user_id, wallet_id, chain_id, status, from_address, "
    "to_address, value, data, nonce, tx_type, gas_limit, max_fee_per_gas, "
    "max_priority_fee_per_gas, gas_price, hash, current_rung, idempotency_key, request_hash, "
    "deadline_at, next_check_at, last_seq) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "$19, $20, $21, $22) "
    "ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING created_at, updated_at, tracking"
)
_TWIN = "SELECT id FROM transactions WHERE user_id = $1 AND idempotency_key = $2"

# The whole ladder in one statement, one array per column.
_INSERT_ATTEMPTS = (
    "INSERT INTO transaction_attempts (transaction_id, kind, rung, raw, hash, max_fee_per_gas, "
    "max_priority_fee_per_gas, gas_price) "
    "SELECT $1, * FROM unnest($2::varchar[], $3::int[], $4::bytea[], $5::varchar[], "
    "$6::numeric[], $7::numeric[], $8::numeric[])"
)

_NEXT_USER_SEQ = "UPDATE users SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq"
# The event and its NOTIFY (delivered at commit) in one round trip.
_INSERT_EVENT = (
    "WITH event AS (INSERT INTO transaction_events "
    "(transaction_id, user_id, seq, user_seq, status, reason, at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)) "
    "SELECT pg_notify($8, $9)"
)


async def lock_nonce(driver: Any, wallet_id: uuid.UUID, chain_id: int, chain_next: int) -> int:
    """The wallet's stored next nonce on a chain, its row locked until commit; the row is
    created from the chain's count ``chain_next`` if new."""
    await driver.execute(_ENSURE_NONCE, wallet_id, chain_id, chain_next)
    return int(await driver.fetchval(_LOCK_NONCE, wallet_id, chain_id))


async def set_next_nonce(driver: Any, wallet_id: uuid.UUID, chain_id: int, nonce: int) -> None:
    await driver.execute(_SET_NONCE, wallet_id, chain_id, nonce)


async def twin_id(driver: Any, user_id: uuid.UUID, idempotency_key: str) -> uuid.UUID | None:
    """The user's transaction with this idempotency key, if any."""
    found: uuid.UUID | None = await driver.fetchval(_TWIN, user_id, idempotency_key)
    return found


async def insert_transaction(driver: Any, tx: Transaction) -> bool:
    """Insert ``tx`` (a new, transient model) and set its server defaults on it; False when
    the user has a transaction with the same idempotency key (nothing inserted)."""
    values = [getattr(tx, column) for column in _TRANSACTION_COLUMNS]
    row = await driver.fetchrow(
        _INSERT_TRANSACTION, *(v.value if isinstance(v, enum.Enum) else v for v in values)
    )
    if row is None:
        return False
    tx.created_at, tx.updated_at, tx.tracking = row
    return True


async def insert_attempts(
    driver: Any, transaction_id: uuid.UUID, attempts: Sequence[Sequence[Any]]
) -> None:
    """``attempts``: (kind, rung, raw, hash, max_fee_per_gas, max_priority_fee_per_gas,
    gas_price) each."""
    columns = list(zip(*attempts, strict=True)) if attempts else [()] * 7
    await driver.execute(_INSERT_ATTEMPTS, transaction_id, *(list(c) for c in columns))


async def next_user_seq(driver: Any, user_id: uuid.UUID) -> int:
    """The user's next event number; the user's row stays locked until commit."""
    return int(await driver.fetchval(_NEXT_USER_SEQ, user_id))


async def insert_event(driver: Any, event: Sequence[Any], channel: str, notification: str) -> None:
    """``event``: (transaction_id, user_id, seq, user_seq, status, reason, at); NOTIFY
    ``channel`` with ``notification`` at commit."""
    await driver.execute(_INSERT_EVENT, *event, channel, notification)
