"""The access log and the request metrics: one line and one count per HTTP request."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import metrics
from services.request_context import RequestInfo, current_request

access_log = logging.getLogger("walletql.access")

# Probes and scrapes come every few seconds: their lines go to DEBUG, their metrics elsewhere.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_ROUTE_LABELS = {path: path for path in (*QUIET_PATHS, "/dev/faucet", "/.well-known/jwks.json")}


class AccessLog:
    """One line and one count per HTTP request: request id, method, path (never the query
    string), status, duration, and the GraphQL operation."""

    def __init__(self, app: ASGIApp, *, graphql_path: str = "/graphql") -> None:
        self.app = app
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        info = RequestInfo()
        token = current_request.set(info)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            path: str = scope["path"]
            if path == self.graphql_path:
                operation = info.operation or metrics.ANONYMOUS
            else:
                operation = _ROUTE_LABELS.get(path, metrics.OTHER)
            metrics.observe_request(operation, status, info.graphql_errors, elapsed)
            level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
            if access_log.isEnabledFor(level):
                duration_ms = round(elapsed * 1000, 1)
                access_log.log(
                    level,
                    "%s %s %d %.1fms request_id=%s operation=%s",
                    scope["method"], path, status, duration_ms, info.request_id, operation,
                    extra={
                        "method": scope["method"], "path": path, "status": status,
                        "duration_ms": duration_ms, "operation": operation,
                    },
                )  # fmt: skip
            current_request.reset(token)
