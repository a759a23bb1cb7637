"""How a subscription's live stream is handed to the transport once it has caught up.

A graphql-transport-ws operation on walletql's transport (walletql/push_slot.py) runs with a
``PushSlot`` in ``CURRENT``. The resolver's stream replays what the client asked for through
strawberry as usual; once it has caught up, the slot takes its hub subscriber, and from then
on each event is executed once for every subscription with the same operation document and
variables, and the same frame is written to all of them. Anywhere else (``schema.subscribe``,
another transport), the stream simply runs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, Protocol

from schema.context import Info
from services.hub import EventView
from services.live import Park

# (after, park) -> the stream of events after ``after`` (None: as the client asked).
Stream = Callable[[int | None, Park | None], AsyncIterator[EventView]]


class PushSlot(Protocol):
    def bind(
        self, info: Info, stream: Stream, root: Callable[[EventView], Any], by_user: bool
    ) -> Park | None:
        """The park callback for this operation's stream, or None when events cannot be
        written directly on this connection."""
        ...


CURRENT: ContextVar[PushSlot | None] = ContextVar("walletql_push_slot", default=None)


def live_events(
    info: Info,
    stream: Stream,
    after_seq: int | None,
    root: Callable[[EventView], Any],
    *,
    by_user: bool = False,
) -> AsyncIterator[EventView]:
    """``stream``'s events, handed to the transport's fan-out once caught up (if it has one)."""
    slot = CURRENT.get()
    park = slot.bind(info, stream, root, by_user) if slot is not None else None
    return stream(after_seq, park)
