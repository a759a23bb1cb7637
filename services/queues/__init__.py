"""The queue port: at-least-once delivery of small text messages (transaction ids).

Two adapters implement it behind one base class: ``PostgresQueue`` (a table queue with
``FOR UPDATE SKIP LOCKED``, for the embedded default and small deployments) and ``SqsQueue``
(AWS SQS through aioboto3, standard or FIFO). One contract test suite covers both.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200


@dataclass(frozen=True)
class Message:
    """One delivery of a message. ``receipt`` identifies this delivery for ack/extend."""

    id: str
    body: str
    receive_count: int
    receipt: str


class Queue(ABC):
    """What every adapter offers; the limits that SQS sets hold for all of them (checked here,
    once)."""

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
        if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:  # also refuses NaN
            raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")
        await self._send(body, float(delay_seconds), group_id, dedup_id)

    async def receive(
        self, *, max_messages: int, wait_seconds: float, visibility_timeout: int
    ) -> list[Message]:
        """Up to ``max_messages`` messages, waiting up to ``wait_seconds`` for the first
        (long polling). Each is hidden from other receivers for ``visibility_timeout``
        seconds and its ``receive_count`` grows by one."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if not 0 <= visibility_timeout <= MAX_VISIBILITY_SECONDS:
            raise ValueError(f"visibility_timeout must be between 0 and {MAX_VISIBILITY_SECONDS}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        return await self._receive(max_messages, remaining, visibility_timeout)

    async def extend(self, message: Message, seconds: int) -> None:
        """Keep a message hidden for ``seconds`` more from now (or make it visible now: 0)."""
        if not 0 <= seconds <= MAX_VISIBILITY_SECONDS:
            raise ValueError(f"seconds must be between 0 and {MAX_VISIBILITY_SECONDS}")
        await self._extend(message, seconds)

    @abstractmethod
    async def ack(self, message: Message) -> None:
        """Delete a processed message."""

    @abstractmethod
    async def dead_letter(self, message: Message, reason: str) -> None:
        """Move a message to the dead-letter destination and delete it from this queue."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _send(
        self, body: str, delay_seconds: float, group_id: str | None, dedup_id: str | None
    ) -> None: ...

    @abstractmethod
    async def _receive(
        self, max_messages: int, remaining: Callable[[], float], visibility_timeout: int
    ) -> list[Message]:
        """Messages, polling while ``remaining()`` (seconds of the wait left) is positive."""

    @abstractmethod
    async def _extend(self, message: Message, seconds: int) -> None: ...
