"""What one HTTP request carries through its task: its id, and what the GraphQL layer learned
about it (the operation, whether errors went out). The edge sets it; error mapping, metrics
and every log line written while the request runs read it."""

from __future__ import annotations

import os
from contextvars import ContextVar


class RequestInfo:
    __slots__ = ("graphql_errors", "operation", "request_id")

    def __init__(self) -> None:
        self.request_id = os.urandom(8).hex()
        self.operation: str | None = None  # the metrics label, set for GraphQL requests
        self.graphql_errors = False


current_request: ContextVar[RequestInfo | None] = ContextVar("walletql_request", default=None)


def request_id() -> str:
    """The running request's id, or a new one outside a request (a websocket operation)."""
    info = current_request.get()
    return info.request_id if info is not None else os.urandom(8).hex()
