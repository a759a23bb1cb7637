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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.queues import Message

MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200
_MAX_QUEUE_NAME = 80

_SEND = text(
    "INSERT INTO queue_messages (queue, body, visible_at) "
    "VALUES (:queue, :body, now() + make_interval(secs => :delay))"
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


class PostgresQueue:
    """One named queue in the ``queue_messages`` table. The engine belongs to the caller."""

    def __init__(self, engine: AsyncEngine, name: str, *, poll_interval: float = 0.1) -> None:
        if not name or len(name) > _MAX_QUEUE_NAME:
            raise ValueError(f"queue name must be 1 to {_MAX_QUEUE_NAME} characters")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.engine = engine
        self.name = name
        self.poll_interval = poll_interval

    async def send(
        self,
        body: str,
        *,
        delay_seconds: float = 0,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> None:
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:  # also refuses NaN
            raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")
        async with self.engine.begin() as conn:
            await conn.execute(
                _SEND, {"queue": self.name, "body": body, "delay": float(delay_seconds)}
            )

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_timeout: int
    ) -> list[Message]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if not 0 <= visibility_timeout <= MAX_VISIBILITY_SECONDS:
            raise ValueError(f"visibility_timeout must be between 0 and {MAX_VISIBILITY_SECONDS}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        while True:
            messages = await self._claim(max_messages, visibility_timeout)
            remaining = deadline - loop.time()
            if messages or remaining <= 0:
                return messages
            await asyncio.sleep(min(self.poll_interval, remaining))

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

    async def extend(self, message: Message, seconds: int) -> None:
        """Hide for ``seconds`` more from now; a no-op with a stale receipt."""
        if not 0 <= seconds <= MAX_VISIBILITY_SECONDS:
            raise ValueError(f"seconds must be between 0 and {MAX_VISIBILITY_SECONDS}")
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
