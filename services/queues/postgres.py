"""The PostgreSQL queue adapter: rows in ``queue_messages``, claimed with SKIP LOCKED.

Every operation is one short transaction of its own. A delivery is identified by the
``receipt`` column, a fresh UUID at every receive: ``ack``, ``extend`` and ``dead_letter``
only touch the row while it still carries the receipt of that delivery, so a worker whose
visibility timeout ran out cannot delete or hide the message another worker now holds.
Long polling is plain polling every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import pooled_driver
from services.queues import Message, Queue

_MAX_QUEUE_NAME = 80

# On the driver's connection: a send follows every submit, and one statement outside a
# transaction is its own (no BEGIN and COMMIT round trips, none of SQLAlchemy's machinery).
_SEND = (
    "INSERT INTO queue_messages (queue, body, visible_at) "
    "VALUES ($1, $2, now() + make_interval(secs => $3))"
)

_RECEIVE = text(
    "UPDATE queue_messages "
    "SET visible_at = now() + make_interval(secs => :vt), "
    "receive_count = receive_count + 1, receipt = gen_random_uuid() "
    "WHERE id IN ("
    "SELECT id FROM queue_messages WHERE queue = :queue AND visible_at <= now() "
    "ORDER BY visible_at, id LIMIT :n FOR UPDATE SKIP LOCKED"
    ") RETURNING id, body, receive_count, receipt"
)

_ACK = text("DELETE FROM queue_messages WHERE id = :id AND queue = :queue AND receipt = :receipt")

_EXTEND = text(
    "UPDATE queue_messages SET visible_at = now() + make_interval(secs => :seconds) "
    "WHERE id = :id AND queue = :queue AND receipt = :receipt"
)

# One statement, hence one transaction: the row leaves the queue exactly when its dead
# letter is written, and nothing happens at all with a stale receipt.
_DEAD_LETTER = text(
    "WITH moved AS ("
    "DELETE FROM queue_messages WHERE id = :id AND queue = :queue AND receipt = :receipt "
    "RETURNING id, body, receive_count"
    ") INSERT INTO queue_dead_letters (queue, message_id, body, receive_count, reason) "
    "SELECT :queue, CAST(id AS text), body, receive_count, :reason FROM moved"
)

_DEAD_LETTERS = text(
    "SELECT id, queue, message_id, body, receive_count, reason, dead_at "
    "FROM queue_dead_letters WHERE queue = :queue ORDER BY id"
)


def _message_key(message: Message) -> tuple[int, uuid.UUID]:
    """(row id, receipt) of a delivery; ValueError for a message of another adapter."""
    return int(message.id), uuid.UUID(message.receipt)


class PostgresQueue(Queue):
    """One named queue in the ``queue_messages`` table. The engine belongs to the caller."""

    def __init__(self, engine: AsyncEngine, name: str, *, poll_interval: float = 0.1) -> None:
        if not name or len(name) > _MAX_QUEUE_NAME:
            raise ValueError(f"queue name must be 1 to {_MAX_QUEUE_NAME} characters")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.engine = engine
        self.name = name
        self.poll_interval = poll_interval

    async def _send(
        self, body: str, delay_seconds: float, group_id: str | None, dedup_id: str | None
    ) -> None:
        async with pooled_driver(self.engine) as driver:
            await driver.execute(_SEND, self.name, body, float(delay_seconds))

    async def _receive(
        self, max_messages: int, remaining: Callable[[], float], visibility_timeout: int
    ) -> list[Message]:
        while True:
            messages = await self._claim(max_messages, visibility_timeout)
            left = remaining()
            if messages or left <= 0:
                return messages
            await asyncio.sleep(min(self.poll_interval, left))

    async def _claim(self, max_messages: int, visibility_timeout: int) -> list[Message]:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                _RECEIVE,
                {"queue": self.name, "n": max_messages, "vt": float(visibility_timeout)},
            )
            rows = result.all()
        return [
            Message(
                id=str(row.id), body=row.body, receive_count=row.receive_count,
                receipt=str(row.receipt),
            )
            for row in sorted(rows, key=lambda row: int(row.id))
        ]  # fmt: skip

    async def ack(self, message: Message) -> None:
        """Delete the message; a no-op when it was redelivered since (stale receipt)."""
        row_id, receipt = _message_key(message)
        async with self.engine.begin() as conn:
            await conn.execute(_ACK, {"id": row_id, "queue": self.name, "receipt": receipt})

    async def _extend(self, message: Message, seconds: int) -> None:
        """Hide for ``seconds`` more from now; a no-op with a stale receipt."""
        row_id, receipt = _message_key(message)
        async with self.engine.begin() as conn:
            await conn.execute(
                _EXTEND,
                {
                    "id": row_id, "queue": self.name, "receipt": receipt,
                    "seconds": float(seconds),
                },
            )  # fmt: skip

    async def dead_letter(self, message: Message, reason: str) -> None:
        """Move the message to ``queue_dead_letters``; a no-op with a stale receipt."""
        row_id, receipt = _message_key(message)
        async with self.engine.begin() as conn:
            await conn.execute(
                _DEAD_LETTER,
                {"id": row_id, "queue": self.name, "receipt": receipt, "reason": reason},
            )

    async def dead_letters(self) -> list[dict[str, object]]:
        """This queue's dead letters, oldest first (for tests and operators)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_DEAD_LETTERS, {"queue": self.name})
            return [dict(row) for row in result.mappings()]

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""
