"""One subscription in the fan-out (``PushSlot``), and the graphql-transport-ws handler
whose subscriptions join the fan-out once caught up (``FanOutTransportWS``).

How the fan-out works, and the library internals it relies on: walletql/fanout.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
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

if TYPE_CHECKING:
    from walletql.fanout import FanOut, Selection

log = logging.getLogger(__name__)


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
