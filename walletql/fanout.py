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
import contextlib
import gc
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from inspect import isawaitable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.execution import ExecutionResult, execute_subscription_event
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from starlette.websockets import WebSocket, WebSocketState
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
)
from strawberry.utils.aio import aclosing

from schema.context import Context, Info
from schema.errors import to_client_error
from schema.push import CURRENT, Stream
from services import metrics
from services.errors import DomainError
from services.hub import CatchUp, EventView, Subscriber
from services.live import Park
from walletql.frame_writer import SEND_TEXT_NOWAIT
from walletql.guarded_view import StrictTransportWS

log = logging.getLogger(__name__)


# The cyclic garbage collector waits while events are being fanned out: right after a burst
# of subscribes a quarter of the heap is new, and the next collection would be a full one,
# scanning every subscription's objects (~0.2 s at 10,000) in the middle of the writes. It
# runs when the last drain ends instead. (gc.freeze() after the burst would avoid the scans,
# but cycles left by closed connections among frozen objects would never be collected.)
_gc_holds = 0


def _hold_gc() -> None:
    global _gc_holds
    if _gc_holds == 0:
        gc.disable()
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


class PushSlot:
    """One subscription operation on one connection, as the fan-out sees it."""

    __slots__ = (
        "by_user",
        "closed",
        "counter",
        "expected",
        "handed",
        "handler",
        "last",
        "operation",
        "parked",
        "prefix",
        "selection",
        "stream",
        "subscriber",
        "task",
        "write",
    )

    def __init__(self, handler: FanOutTransportWS, operation: Operation[Context, None]) -> None:
        self.handler = handler
        self.operation = operation
        self.selection: Selection | None = None
        self.subscriber: Subscriber | None = None
        self.stream: Stream | None = None
        self.write: Callable[[str], bool] | None = None
        self.task: asyncio.Task[None] | None = None
        self.by_user = False
        self.counter = metrics.TRANSACTION_STATUS_EVENTS
        self.last = 0  # the cursor (seq, or userSeq for myTransactions) of the last frame sent
        self.expected = 1  # the cursor of the next event handed to the selection
        self.parked = False
        self.handed = False  # parked at least once: this slot completes the operation
        self.closed = False
        self.prefix = ""

    @property
    def context(self) -> Context:
        return self.handler.context

    def bind(
        self, info: Info, stream: Stream, root: Callable[[EventView], Any], by_user: bool
    ) -> Park | None:
        socket = self.context.request
        write = socket.scope.get("extensions", {}).get(SEND_TEXT_NOWAIT)
        if write is None or self.selection is not None:
            return None  # not on a socket we can write to directly: the stream runs on
        operation = self.operation
        self.write = write
        self.stream = stream
        self.by_user = by_user
        if by_user:
            self.counter = metrics.MY_TRANSACTIONS_EVENTS
        self.prefix = f'{{"id":{json.dumps(operation.id)},"type":"next","payload":'
        self.selection = self.handler.fanout.join(
            operation.query, operation.variables, operation.operation_name, root
        )
        # One copy of the document text and variables for all its subscriptions.
        operation.query = self.selection.key[0]
        operation.variables = self.selection.variables
        return self.park

    def _cursor(self, event: EventView) -> int:
        return event.user_seq if self.by_user else event.seq

    def park(self, subscriber: Subscriber, last: int) -> bool:
        if self.closed:
            return False
        self.subscriber = subscriber
        self.last = last
        self.expected = last + 1
        self.parked = self.handed = True
        subscriber.parked = self
        return True

    def offer(self, item: EventView | CatchUp) -> None:
        """From the hub, for every notification of this subscription's transaction or user."""
        if not self.parked:
            return
        if isinstance(item, CatchUp):
            self.wake()
            return
        cursor = self._cursor(item)
        if cursor < self.expected:
            return  # already sent
        if cursor > self.expected:
            self.wake()  # a gap: the event log has what was missed
            return
        self.expected = cursor + 1
        assert self.selection is not None
        self.selection.enqueue(item, self)

    def expects(self, event: EventView) -> bool:
        return self.parked and self._cursor(event) == self.last + 1

    def deliver(self, payload: str, event: EventView) -> None:
        assert self.write is not None
        if not self.write(self.prefix + payload + "}"):
            self.wake()  # the socket cannot take it now: served on its own from here
            return
        self.last = self._cursor(event)
        if not self.by_user and event.status.is_final:
            self.parked = False
            self._release_subscriber()
            complete = f'{{"id":{json.dumps(self.operation.id)},"type":"complete"}}'
            if self._forget() and not self.write(complete):
                self.task = asyncio.get_running_loop().create_task(self._send_complete())

    def wake(self) -> None:
        """Leave the fan-out: run this subscription's own stream from the last frame sent."""
        if not self.parked or self.closed:
            return
        self.parked = False
        subscriber, self.subscriber = self.subscriber, None
        if subscriber is not None:
            subscriber.parked = None  # unsubscribed by the task: the hub may be iterating
        self.task = asyncio.get_running_loop().create_task(self._resume(subscriber))

    async def _resume(self, old: Subscriber | None) -> None:
        if old is not None:
            old.close()
        assert self.stream is not None
        assert self.selection is not None
        context = self.context
        socket = context.request
        assert isinstance(socket, WebSocket)
        try:
            async with aclosing(self.stream(self.last, self.park)) as events:
                async for event in events:
                    payload = await self.selection.payload(event, context)
                    await socket.send_text(self.prefix + payload + "}")  # waits for the socket
                    self.last = self._cursor(event)
                    self.counter.inc()
            if self.parked or self.closed:
                return  # caught up: back in the fan-out
            if self._forget():
                await self._send_complete()
        except Exception as exc:
            gone = WebSocketState.DISCONNECTED in (socket.application_state, socket.client_state)
            if gone and not isinstance(exc, DomainError):
                log.debug("subscription ended while catching up: %s", type(exc).__name__)
                return  # the socket went away meanwhile
            # SLOW_CONSUMER or the transaction gone: its error; anything else (the database,
            # say): INTERNAL, logged with the request id. Then complete: never a silent stop.
            error = to_client_error(GraphQLError(str(exc), original_error=exc), context.request_id)
            body = self.handler.fanout.encode({"data": None, "errors": [error.formatted]})
            with contextlib.suppress(Exception):
                await socket.send_text(self.prefix + body + "}")
                if self._forget():
                    await self._send_complete()
        finally:
            self.task = None

    def _forget(self) -> bool:
        """De-register the operation before its last message, as strawberry does; False if
        it is already gone (the client completed it, or the socket closed)."""
        operation = self.operation
        if operation.completed or self.handler.operations.get(operation.id) is not operation:
            return False
        operation.completed = True
        self.handler.forget_id(operation.id)
        self.handler.slots.pop(operation.id, None)
        self._leave()
        return True

    async def _send_complete(self) -> None:
        with contextlib.suppress(Exception):
            await self.handler.send_message(CompleteMessage(id=self.operation.id, type="complete"))

    def _release_subscriber(self) -> None:
        if self.subscriber is not None:
            self.subscriber.close()
            self.subscriber = None

    def _leave(self) -> None:
        if self.selection is not None:
            self.handler.fanout.leave(self.selection)
            self.selection = None

    def close(self) -> None:
        """The client completed the operation, or the socket closed."""
        self.closed = True
        self.parked = False
        self._release_subscriber()
        self._leave()
        if self.task is not None:
            self.task.cancel()


class FanOutTransportWS(StrictTransportWS):
    """graphql-transport-ws whose subscriptions join the fan-out once caught up."""

    fanout: FanOut

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fanout = self.view.fanout  # type: ignore[attr-defined]
        self.slots: dict[str, PushSlot] = {}

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        # Held for the socket's life otherwise: the cancelled timer task (with its
        # traceback) and the token text, which the verified principal has replaced.
        self.connection_init_timeout_task = None
        if self.connection_acknowledged and self.context._principal is not None:
            self.context.connection_params = {}

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """strawberry's ``run_operation``, except that a subscription handed to the fan-out
        ends its stream without completing."""
        slot = PushSlot(self, operation)
        CURRENT.set(slot)  # this operation's task only
        self.slots[operation.id] = slot
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            if slot.handed:
                # The fan-out serves it from here, and completes it. Nothing of this task
                # needs to stay with the operation (cleanup_operation knows).
                operation.task = None
                return
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:  # pragma: no cover - as strawberry
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            if not slot.handed and self.slots.get(operation.id) is slot:
                del self.slots[operation.id]
                slot.close()

    async def cleanup_operation(self, operation_id: str) -> None:
        slot = self.slots.pop(operation_id, None)
        if slot is not None:
            slot.close()
        operation = self.operations.get(operation_id)
        if operation is not None and operation.task is None:  # in the fan-out: no task
            del self.operations[operation_id]
            return
        await super().cleanup_operation(operation_id)
