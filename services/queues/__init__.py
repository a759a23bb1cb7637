"""The queue port: at-least-once delivery of small text messages (transaction ids).

Two adapters implement it behind one interface: ``PostgresQueue`` (a table queue with
``FOR UPDATE SKIP LOCKED``, for the embedded default and small deployments) and ``SqsQueue``
(AWS SQS through aioboto3, standard or FIFO). One contract test suite covers both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One delivery of a message. ``receipt`` identifies this delivery for ack/extend."""

    id: str
    body: str
    receive_count: int
    receipt: str


class Queue(Protocol):
    async def send(
        self,
        body: str,
        *,
        delay_seconds: float = 0,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> None:
        """Enqueue ``body``, visible after ``delay_seconds`` (at most 900; SQS rounds up to
        whole seconds).

        ``group_id``/``dedup_id`` are used by FIFO queues (ordering per group,
        deduplication) and ignored elsewhere.
        """
        ...

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_timeout: int
    ) -> list[Message]:
        """Up to ``max_messages`` messages, waiting up to ``wait_seconds`` for the first
        (long polling). Each is hidden from other receivers for ``visibility_timeout``
        seconds and its ``receive_count`` grows by one."""
        ...

    async def ack(self, message: Message) -> None:
        """Delete a processed message."""
        ...

    async def extend(self, message: Message, seconds: int) -> None:
        """Keep a message hidden for ``seconds`` more from now (or make it visible now: 0)."""
        ...

    async def dead_letter(self, message: Message, reason: str) -> None:
        """Move a message to the dead-letter destination and delete it from this queue."""
        ...

    async def close(self) -> None: ...
