"""The SQL of a submit, on the driver's connection of the unit's transaction
(``UnitOfWork.driver_in_transaction``): one prepared statement per step, with none of the
ORM's flush machinery. The rows are the ones the ORM models describe (``db/models.py``)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

from db.models import Transaction

# The row is created from the chain's count if new; either way the no-op update locks it
# until commit (as FOR UPDATE would) and returns what it holds.
_LOCK_NONCE = (
    "INSERT INTO nonce_states (wallet_id, chain_id, next_nonce) VALUES ($1, $2, $3) "
    "ON CONFLICT (wallet_id, chain_id) DO UPDATE SET next_nonce = nonce_states.next_nonce "
    "RETURNING next_nonce"
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
# The transaction and its whole ladder (one array per attempt column). A twin with the same
# idempotency key (the partial unique index) inserts neither: the caller reads the twin. Any
# other conflict (the wallet's nonce) raises.
_INSERT_TRANSACTION = (
    "WITH tx AS ("  # noqa: S608 - column names and placeholders of this module only
    f"INSERT INTO transactions ({', '.join(_TRANSACTION_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_TRANSACTION_COLUMNS) + 1))}) "
    "ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING id, created_at, updated_at, tracking"
    "), attempts AS ("
    "INSERT INTO transaction_attempts (transaction_id, kind, rung, raw, hash, max_fee_per_gas, "
    "max_priority_fee_per_gas, gas_price) "
    "SELECT tx.id, a.* FROM tx, unnest("
    + ", ".join(
        f"${len(_TRANSACTION_COLUMNS) + n}::{kind}[]"
        for n, kind in enumerate(
            ("varchar", "int", "bytea", "varchar", "numeric", "numeric", "numeric"), 1
        )
    )
    + ") AS a"
    ") SELECT created_at, updated_at, tracking FROM tx"
)
_TWIN = "SELECT id FROM transactions WHERE user_id = $1 AND idempotency_key = $2"

# The user's next event number (its row stays locked until commit), the event, and its
# NOTIFY (delivered at commit), whose payload holds that number between $8 and $9.
_INSERT_EVENT = (
    "WITH seq AS ("
    "UPDATE users SET event_seq = event_seq + 1 WHERE id = $2 RETURNING event_seq"
    "), event AS ("
    "INSERT INTO transaction_events (transaction_id, user_id, seq, user_seq, status, reason, at) "
    "SELECT $1, $2, $3, event_seq, $4, $5, $6 FROM seq"
    ") SELECT event_seq, pg_notify($7, $8::text || event_seq::text || $9::text) FROM seq"
)


async def lock_nonce(driver: Any, wallet_id: uuid.UUID, chain_id: int, chain_next: int) -> int:
    """The wallet's stored next nonce on a chain, its row locked until commit; the row is
    created from the chain's count ``chain_next`` if new."""
    return int(await driver.fetchval(_LOCK_NONCE, wallet_id, chain_id, chain_next))


async def set_next_nonce(driver: Any, wallet_id: uuid.UUID, chain_id: int, nonce: int) -> None:
    await driver.execute(_SET_NONCE, wallet_id, chain_id, nonce)


async def twin_id(driver: Any, user_id: uuid.UUID, idempotency_key: str) -> uuid.UUID | None:
    """The user's transaction with this idempotency key, if any."""
    found: uuid.UUID | None = await driver.fetchval(_TWIN, user_id, idempotency_key)
    return found


async def insert_transaction(
    driver: Any, tx: Transaction, attempts: Sequence[Sequence[Any]]
) -> bool:
    """Insert ``tx`` (a new, transient model) with its ``attempts`` ((kind, rung, raw, hash,
    max_fee_per_gas, max_priority_fee_per_gas, gas_price) each) and set its server defaults
    on it; False when the user has a transaction with the same idempotency key (nothing
    inserted)."""
    values = [getattr(tx, column) for column in _TRANSACTION_COLUMNS]
    columns = list(zip(*attempts, strict=True)) if attempts else [()] * 7
    row = await driver.fetchrow(
        _INSERT_TRANSACTION,
        *(v.value if isinstance(v, enum.Enum) else v for v in values),
        *(list(column) for column in columns),
    )
    if row is None:
        return False
    tx.created_at, tx.updated_at, tx.tracking = row
    return True


async def insert_event(
    driver: Any, event: Sequence[Any], channel: str, notification: tuple[str, str]
) -> int:
    """Append ``event`` ((transaction_id, user_id, seq, status, reason, at)) with the user's
    next event number, which it returns; NOTIFY ``channel`` at commit with that number
    between the two halves of ``notification``."""
    return int(await driver.fetchval(_INSERT_EVENT, *event, channel, *notification))
