"""The edge of the GraphQL view: every body and websocket message is checked before use.

strawberry decodes request bodies, GET variables and websocket frames with a recursive JSON
decoder and assumes their shapes; a body that is a string, or a frame that is a list, used to
end in a 500 or a dropped socket. Here each one is bounded and checked, and refused with a
code: HTTP with a JSON error body, graphql-transport-ws with close code 4400.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

from schema.context import Context
from services.json_limits import JsonTooDeep, loads_bounded
from walletql.rejections import RequestRejected, rejection_response

_OPTIONAL_OBJECT = (dict, type(None))


def malformed(message: object) -> str | None:
    """Why a graphql-transport-ws message breaks the protocol's shapes, or None."""
    if not isinstance(message, dict):
        return "Message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "Message type must be a string"
    if kind in ("connection_init", "ping", "pong"):
        if not isinstance(message.get("payload"), _OPTIONAL_OBJECT):
            return "Payload must be an object"
    elif kind in ("subscribe", "complete"):
        op_id = message.get("id")
        if not isinstance(op_id, str) or not op_id or len(op_id) > 256:
            return "Operation id must be a string of 1 to 256 characters"
        if kind == "subscribe":
            payload = message.get("payload")
            if not isinstance(payload, dict):
                return "Subscribe payload must be an object"
            if not isinstance(payload.get("query"), str):
                return "Subscribe payload query must be a string"
            for key in ("variables", "extensions"):
                if not isinstance(payload.get(key), _OPTIONAL_OBJECT):
                    return f"Subscribe payload {key} must be an object"
            if not isinstance(payload.get("operationName"), (str, type(None))):
                return "Subscribe payload operationName must be a string"
    return None


class StrictTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws that closes with 4400 on any malformed message, as the spec says."""

    async def handle_message(self, message: Message) -> None:
        problem = malformed(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class GuardedGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = StrictTransportWS

    def parse_json(self, data: str | bytes) -> Any:
        """Bodies (bytes) and GET parameters (str); the depth is bounded before decoding."""
        try:
            value = loads_bounded(data)
        except JsonTooDeep as exc:
            raise RequestRejected(400, "BAD_USER_INPUT", str(exc)) from None
        except ValueError:  # also UnicodeDecodeError
            raise RequestRejected(
                400, "BAD_REQUEST", "Unable to parse the request as JSON"
            ) from None
        # A request body is always an object: one operation (batching is not enabled).
        if isinstance(data, bytes) and not isinstance(value, dict):
            raise RequestRejected(400, "BAD_REQUEST", "The request body must be a JSON object")
        return value

    def decode_json(self, data: str | bytes) -> object:
        """Websocket frames: a frame too deep is a protocol error (4400), like bad JSON."""
        try:
            return loads_bounded(data)
        except (JsonTooDeep, UnicodeDecodeError) as exc:
            raise json.JSONDecodeError(str(exc), "", 0) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            response = rejection_response(exc)
        await response(scope, receive, send)
