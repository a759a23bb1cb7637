"""Execute once, write many: live events pushed to thousands of subscriptions.

A subscription replays what its client asked for (the current state, or the events after
``afterSeq``) through strawberry as any operation does. Once it has caught up, its stream
hands its hub subscriber to the operation's ``PushSlot`` (schema/push.py) and ends: no task,
generator or execution context is kept per subscription from then on. Each new event is
executed once per ``Selection`` (one operation document with one set of variables) and
serialized once; each subscription's frame is that payload with its own operation ``id``,
written in one synchronous loop through the socket's frame writer (walletql/frame_writer.py).

Every per-subscriber guarantee stays with the subscriber: an event out of order (a gap), a
catch-up after a listener reconnect, or a socket that cannot take the frame now (a client
that does not read) wakes that one subscription, which runs its own stream again from the
last event it was sent: the event log fills the gap, ASGI ``send`` waits for the socket,
the hub's bounded buffer cuts off a stuck client with ``SLOW_CONSUMER`` and its
``resumeAfterSeq``, and once caught up it parks again. A final status completes the
operation. Different selections of the same transaction are different Selections, each
with its own shape.

Relies on strawberry's graphql-transport-ws handler (its ``run_operation``, ``operations``,
``Operation``) and on graphql-core's ``Executor``: tests/test_fanout_pins.py fails when an
upgrade changes them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from graphql import DocumentNode, GraphQLSchema, parse
from graphql.execution import ExecutionResult, execute_subscription_event
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental

from schema.context import Context
from schema.errors import to_client_error
from services.hub import EventView

if TYPE_CHECKING:
    from walletql.push_slot import PushSlot

log = logging.getLogger(__name__)


# The cyclic garbage collector waits while events are being fanned out: right after a burst
# of subscribes a quarter of the heap is new, and the next collection would be a full one,
# scanning every subscription's objects (~0.2 s at 10,000) in the middle of the writes. It
# runs when the last drain ends instead. (gc.freeze() after the burst would avoid the scans,
# but cycles left by closed connections among frozen objects would never be collected.)
# Drains that keep overlapping (a loaded process) would hold it off for good: after
# _GC_HOLD_LIMIT seconds of holding, the young generations are collected (cheap: the old
# generation, where the subscriptions live, is not scanned) and the clock starts again.
_gc_holds = 0
_gc_held_since = 0.0
_GC_HOLD_LIMIT = 1.0


def _hold_gc() -> None:
    global _gc_holds, _gc_held_since
    now = time.monotonic()
    if _gc_holds == 0:
        gc.disable()
        _gc_held_since = now
    elif now - _gc_held_since > _GC_HOLD_LIMIT:
        gc.collect(1)
        _gc_held_since = now
    _gc_holds += 1


def _release_gc(_task: object = None) -> None:
    global _gc_holds
    _gc_holds -= 1
    if _gc_holds == 0:
        gc.enable()


class Selection:
    """One operation document with one set of variables, shared by its subscriptions."""

    def __init__(
        self,
        registry: FanOut,
        key: tuple[str, str, str | None],
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        root: Callable[[EventView], Any],
    ) -> None:
        self.registry = registry
        self.key = key
        self.document: DocumentNode = parse(query)  # validated for its first subscriber
        self.variables = variables
        self.operation_name = operation_name
        self.root = root
        self.members = 0
        self._batches: deque[tuple[EventView, list[PushSlot]]] = deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._last: tuple[tuple[uuid.UUID, int], str] | None = None

    def enqueue(self, event: EventView, slot: PushSlot) -> None:
        # The hub offers one event to its subscribers in one loop: they form one batch.
        if self._batches and self._batches[-1][0] is event:
            self._batches[-1][1].append(slot)
            return
        self._batches.append((event, [slot]))
        if self._drain_task is None:
            _hold_gc()
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())
            # Released when the drain ends, even one cancelled before it started.
            self._drain_task.add_done_callback(_release_gc)

    async def _drain(self) -> None:
        try:
            while self._batches:
                event, slots = self._batches.popleft()
                ready = [s for s in slots if s.expects(event)]
                if not ready:
                    continue
                try:
                    text = await self.payload(event, ready[0].context)
                except Exception:
                    log.exception("fan-out execution failed; each subscriber takes its own path")
                    for slot in ready:
                        slot.wake()
                    continue
                delivered = 0
                for slot in ready:  # one synchronous loop of writes
                    # Asked again: while the execution awaited, a subscriber may have woken
                    # (and sent this event on its own), or completed.
                    if slot.expects(event):
                        slot.deliver(text, event)
                        delivered += 1
                ready[0].counter.inc(delivered)
        finally:
            self._drain_task = None
            self.registry.forget_if_unused(self)

    async def payload(self, event: EventView, context: Context) -> str:
        """The ``next`` payload of ``event`` for this selection, as JSON text (the last one
        is kept: a subscriber catching up usually asks for the event just sent)."""
        key = (event.transaction_id, event.seq)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        context.new_scope()  # each event reads its rows afresh (schema/loaders.py)
        executor = ExecutorThrowingOnIncremental.build(
            self.registry.schema,
            self.document,
            None,
            context,
            self.variables,
            self.operation_name,
        )
        if isinstance(executor, list):  # the variables no longer coerce: not expected
            result = ExecutionResult(None, errors=executor)
        else:
            outcome = execute_subscription_event(
                executor.build_per_event_executor(self.root(event))
            )
            result = await outcome if isawaitable(outcome) else outcome
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [
                to_client_error(e, context.request_id, self.document).formatted
                for e in result.errors
            ]
        text = self.registry.encode(body)
        self._last = (key, text)
        return text


class FanOut:
    """This process's Selections, by (document, variables, operation name)."""

    def __init__(self, schema: GraphQLSchema, encode: Callable[[object], str]) -> None:
        self.schema = schema
        self.encode = encode
        self._selections: dict[tuple[str, str, str | None], Selection] = {}

    def join(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        root: Callable[[EventView], Any],
    ) -> Selection:
        key = (query, json.dumps(variables or {}, sort_keys=True), operation_name)
        selection = self._selections.get(key)
        if selection is None:
            selection = Selection(self, key, query, variables, operation_name, root)
            self._selections[key] = selection
        selection.members += 1
        return selection

    def leave(self, selection: Selection) -> None:
        selection.members -= 1
        self.forget_if_unused(selection)

    def forget_if_unused(self, selection: Selection) -> None:
        unused = selection.members <= 0 and selection._drain_task is None
        if unused and self._selections.get(selection.key) is selection:
            del self._selections[selection.key]

    def __len__(self) -> int:
        return len(self._selections)
