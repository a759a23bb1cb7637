"""In-process fan-out of transaction events to this process's subscribers.

One listener per process (services/listener.py) feeds ``publish``; each subscriber gets a
bounded buffer. Notifications only carry small event records; a subscriber that missed any
(overflow, a reconnect of the listener) catches up from the event log in the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services import metrics
from services.domain import TransactionStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventView:
    """One transaction event, from a notification or from the event log."""

    transaction_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    user_seq: int
    status: TransactionStatus
    reason: str | None
    at: datetime

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EventView:
        return cls(
            transaction_id=uuid.UUID(payload["tx"]),
            user_id=uuid.UUID(payload["user"]),
            seq=int(payload["seq"]),
            user_seq=int(payload["useq"]),
            status=TransactionStatus(payload["status"]),
            reason=payload.get("reason"),
            at=datetime.fromisoformat(payload["at"]),
        )


class EventSource(Protocol):
    """The pub/sub port: something that calls ``EventHub.publish`` for every committed event
    notification, and ``EventHub.catch_up_all`` whenever it may have missed some.
    ``services/listener.py`` implements it on PostgreSQL LISTEN/NOTIFY; a Redis pub/sub
    adapter (for databases without NOTIFY) would implement the same two methods."""

    def start(self) -> None:
        """Begin listening in the background; ``listening`` turns true once it does."""

    async def close(self) -> None: ...

    @property
    def listening(self) -> bool:
        """True while notifications can arrive (readiness: /readyz answers 503 otherwise)."""
        ...


class CatchUp:
    """A marker: read the event log, something may have been missed."""


CATCH_UP = CatchUp()


class Parking(Protocol):
    """Where a parked subscriber's items go instead of its queue (the GraphQL edge's fan-out:
    it writes one executed frame to many subscribers without waking each one's stream)."""

    def offer(self, item: EventView | CatchUp) -> None: ...


class Subscriber:
    __slots__ = ("_buffer", "_hub", "_queue", "overflowed", "parked")

    def __init__(self, hub: EventHub, buffer: int) -> None:
        self._hub = hub
        self._buffer = buffer
        # Made on first use: a parked subscriber never needs one.
        self._queue: asyncio.Queue[EventView | CatchUp] | None = None
        self.overflowed = False
        self.parked: Parking | None = None

    def _items(self) -> asyncio.Queue[EventView | CatchUp]:
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self._buffer)
        return self._queue

    @property
    def idle(self) -> bool:
        """Nothing is waiting to be read."""
        return self._queue is None or self._queue.empty()

    def offer(self, item: EventView | CatchUp) -> None:
        if self.parked is not None:
            self.parked.offer(item)
            return
        if self.overflowed:
            return
        try:
            self._items().put_nowait(item)
        except asyncio.QueueFull:
            # A stuck or slow client: stop buffering for it; the subscription ends with a
            # clear error and the client resumes with afterSeq.
            self.overflowed = True
            self._queue = asyncio.Queue(maxsize=1)
            self._queue.put_nowait(CATCH_UP)

    async def next(self) -> EventView | CatchUp:
        return await self._items().get()

    def close(self) -> None:
        self.parked = None
        self._hub.unsubscribe(self)


class EventHub:
    def __init__(self, buffer: int = 256) -> None:
        self._buffer = buffer
        self._by_tx: dict[uuid.UUID, set[Subscriber]] = {}
        self._by_user: dict[uuid.UUID, set[Subscriber]] = {}
        self._keys: dict[Subscriber, tuple[dict[uuid.UUID, set[Subscriber]], uuid.UUID]] = {}

    def subscribe(
        self, *, transaction_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
    ) -> Subscriber:
        subscriber = Subscriber(self, self._buffer)
        index, key = (
            (self._by_tx, transaction_id)
            if transaction_id is not None
            else (self._by_user, user_id)
        )
        assert key is not None
        index.setdefault(key, set()).add(subscriber)
        self._keys[subscriber] = (index, key)
        metrics.SUBSCRIPTIONS_ACTIVE.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        found = self._keys.pop(subscriber, None)
        if found is None:
            return
        metrics.SUBSCRIPTIONS_ACTIVE.dec()
        index, key = found
        group = index.get(key)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del index[key]

    def publish(self, payload: str) -> None:
        """Fan one notification out to the subscribers of its transaction and its user."""
        metrics.EVENT_NOTIFICATIONS.inc()
        try:
            event = EventView.from_payload(json.loads(payload))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event notification")
            return
        for subscriber in self._by_tx.get(event.transaction_id, ()):
            subscriber.offer(event)
        for subscriber in self._by_user.get(event.user_id, ()):
            subscriber.offer(event)

    def catch_up_all(self) -> None:
        """After a listener reconnect: every subscriber re-reads the log."""
        for index in (self._by_tx, self._by_user):
            for group in index.values():
                for subscriber in group:
                    subscriber.offer(CATCH_UP)

    @property
    def subscriber_count(self) -> int:
        return len(self._keys)
