"""The GraphQL endpoint: HTTP and graphql-transport-ws, with the typed per-request context."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from schema import build_schema
from schema.context import Context
from services import metrics
from services.errors import Unauthenticated
from walletql.fanout import FanOut
from walletql.http_protocol import GraphQLOverHTTP
from walletql.origins import OriginPolicy
from walletql.persisted_queries import PersistedQueries
from walletql.push_slot import FanOutTransportWS
from walletql.settings import Settings


class GraphQLView(GraphQLOverHTTP):
    graphql_transport_ws_handler_class = FanOutTransportWS

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
                introspection=settings.introspection_enabled,
                max_cost=settings.max_query_cost,
                max_selections=settings.max_expanded_selections,
                cache_bytes=settings.document_cache_bytes,
                cache_max_query_bytes=settings.document_cache_max_query_bytes,
            ),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            subscription_protocols=("graphql-transport-ws",),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )
        self.origins = OriginPolicy(settings.origins)
        self.persisted = PersistedQueries(settings.apq_cache_size, settings.apq_cache_bytes)
        self.leeway = settings.jwt_leeway_seconds
        self.fanout = FanOut(self.schema._schema, self.encode_json_string)  # type: ignore[attr-defined]

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        # The same list as CORS: a page allowed to POST may also subscribe.
        return self.origins.allows(origin)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(services=request.state.services, request=request, response=response)

    async def on_ws_connect(self, context: Context) -> None:
        try:
            principal = await context.principal()
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from exc
        socket = context.request
        assert isinstance(socket, WebSocket)

        async def close_on_expiry() -> None:
            with contextlib.suppress(Exception):
                await socket.close(code=4403, reason="Token expired")

        # The token stays good as long as HTTP would accept it (exp + leeway), not a moment
        # longer: a token accepted here is never acked and then closed at once.
        delay = max(0.0, principal.expires_at + self.leeway - time.time())
        socket.state.expiry = asyncio.get_running_loop().call_later(
            delay, lambda: asyncio.ensure_future(close_on_expiry())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        socket = WebSocket(scope, receive=receive, send=send)
        metrics.WEBSOCKETS_OPEN.inc()
        try:
            await self.run(socket)
        finally:
            metrics.WEBSOCKETS_OPEN.dec()
            expiry = getattr(socket.state, "expiry", None)
            if expiry is not None:
                expiry.cancel()

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Subscriptions need the websocket: over HTTP they would only give null data."""
        query = request_data.query
        if isinstance(query, str) and "subscription" in query and _is_subscription(request_data):
            scheme = "wss" if request.url.scheme == "https" else "ws"
            websocket = str(request.url.replace(scheme=scheme, query=""))
            error = GraphQLError(
                f"subscriptions run over the websocket at {websocket} "
                "(protocol graphql-transport-ws), not over HTTP",
                extensions={"code": "BAD_USER_INPUT", "websocket": websocket},
            )
            return ExecutionResult(data=None, errors=[error])
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        from walletql.graphiql import graphiql_page

        page, headers = graphiql_page()
        return HTMLResponse(page, headers=headers)


def _is_subscription(data: GraphQLRequestData) -> bool:
    from graphql import GraphQLSyntaxError, OperationType, get_operation_ast, parse

    try:
        operation = get_operation_ast(parse(data.query or ""), data.operation_name)
    except GraphQLSyntaxError:
        return False  # reported as usual
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION
