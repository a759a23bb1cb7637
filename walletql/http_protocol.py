"""The HTTP side of the GraphQL view: persisted queries, media types and coded refusals."""

from __future__ import annotations

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol

from walletql.graphql_response import (
    GRAPHQL_RESPONSE_JSON,
    failed_before_execution,
    prefers_graphql_response_json,
    refusal,
    response_status,
)
from walletql.guarded_view import GuardedGraphQL
from walletql.persisted_queries import PersistedQueries
from walletql.rejections import RequestRejected


class GraphQLOverHTTP(GuardedGraphQL):
    """APQ before execution; application/graphql-response+json when the client prefers it;
    every refusal as a GraphQL error with ``extensions.code``."""

    persisted: PersistedQueries

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, list):  # batching is off: strawberry refuses lists before this
            return data
        return self.persisted.resolve(data)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET with only a persisted query's hash is an operation, not a visit to GraphiQL.
        return super().should_render_graphql_ide(request) and not request.query_params.get(
            "extensions"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = self._refuse(request, exc)
        await response(scope, receive, send)

    def _refuse(self, request: Request, exc: HTTPException) -> Response:
        if request.method == "GET" and "not allowed when using GET" in exc.reason:
            exc = RequestRejected(405, "METHOD_NOT_ALLOWED", exc.reason)  # the spec's status
        modern = prefers_graphql_response_json(request.headers.get("accept"))
        response = refusal(exc, modern=modern, encode=self.encode_json)
        if exc.status_code == 405:
            response.headers["allow"] = "POST"
        return response

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if prefers_graphql_response_json(request.headers.get("accept")):
            sub_response.media_type = GRAPHQL_RESPONSE_JSON  # read by create_response
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        modern = sub_response.media_type == GRAPHQL_RESPONSE_JSON
        if modern and failed_before_execution(response_data):
            assert isinstance(response_data, dict)
            response_data = {"errors": response_data["errors"]}  # the spec: no data entry
        response = super().create_response(response_data, sub_response)
        if modern:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            response.status_code = response_status(response_data, response.status_code, True)
        return response
