"""The library internals walletql/fanout.py and walletql/frame_writer.py stand on, pinned.

The fan-out copies strawberry's graphql-transport-ws ``run_operation`` (to end a stream
without completing it), forgets operations the way ``Operation`` does, writes ``next``
frames in ``Operation.send_next``'s shape, executes events as graphql-core's subscription
pipeline does (``Executor.build``, ``build_per_event_executor``,
``execute_subscription_event``), and writes frames the way uvicorn's websockets-sansio
``send`` does, reading that protocol's state. When an upgrade changes any of these, this
test fails: read the new code, adapt walletql/fanout.py or walletql/frame_writer.py, and
record the new fingerprint here. (tests/test_fanout.py checks the behaviour end to end.)
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from graphql.execution import Executor, execute_subscription_event, map_source_to_response_event
from strawberry.schema.schema import Schema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from schema import build_schema

Handler = BaseGraphQLTransportWSHandler
PINNED: dict[str, tuple[Callable[..., Any], str]] = {
    "strawberry run_operation": (Handler.run_operation, "e760cd71eb37905f"),
    "strawberry _send_result_stream": (Handler._send_result_stream, "1451d755ddc72976"),
    "strawberry cleanup_operation": (Handler.cleanup_operation, "fc0d6de7efc793ab"),
    "strawberry forget_id": (Handler.forget_id, "9e423ce3d9f0a2c6"),
    "strawberry Operation.send_operation_message": (
        Operation.send_operation_message,
        "dcb871d26abf720b",
    ),
    "strawberry Operation.send_next": (Operation.send_next, "e7c949ea1d1a459e"),
    "strawberry Schema._stream": (Schema._stream, "c5ba32092056c6a1"),
    "uvicorn send": (WebSocketsSansIOProtocol.send, "d4919ed760ce9f7b"),
    "uvicorn handle_connect": (WebSocketsSansIOProtocol.handle_connect, "fc648c2161ff8e13"),
    "graphql-core Executor.build": (Executor.build, "faf76cb9d6140315"),
    "graphql-core build_per_event_executor": (
        Executor.build_per_event_executor,
        "e42b7eb17861c1b7",
    ),
    "graphql-core execute_subscription_event": (execute_subscription_event, "e9908f304bb0bc7d"),
    "graphql-core map_source_to_response_event": (
        map_source_to_response_event,
        "6eb8cb26326da419",
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_library_code_the_fan_out_copies_or_calls_is_unchanged(name: str) -> None:
    function, fingerprint = PINNED[name]
    source = inspect.getsource(function)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == fingerprint, name


def test_the_state_the_frame_writer_reads_is_still_there() -> None:
    init = inspect.getsource(WebSocketsSansIOProtocol.__init__)
    state = ("conn", "writable", "close_sent", "disconnected", "handshake_complete",
             "initial_response", "transport")  # fmt: skip
    for attribute in state:
        assert f"self.{attribute}" in init


def test_the_schema_exposes_its_graphql_core_schema() -> None:
    schema = build_schema()
    assert schema._schema.subscription_type is not None
    assert "transactionStatus" in schema._schema.subscription_type.fields
