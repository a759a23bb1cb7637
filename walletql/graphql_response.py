"""GraphQL over HTTP: the ``application/graphql-response+json`` media type and coded refusals.

Under ``application/json`` (the legacy type) every well-formed response is 200. A client that
prefers ``application/graphql-response+json`` gets it, with the spec's statuses: a request that
fails before execution (no ``data``) is 4xx. Requests refused before GraphQL runs get the
GraphQL error shape with ``extensions.code`` under either type.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.responses import Response

from walletql.rejections import code_of, error_body

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _quality(accept: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found[media.lower()] = max(q, found.get(media.lower(), 0.0))
    return found


def prefers_graphql_response_json(accept: str | None) -> bool:
    """True when the client asks for application/graphql-response+json at least as much as
    for application/json (no Accept, or only */*, keeps application/json)."""
    if not accept:
        return False
    q = _quality(accept)
    wanted = q.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return wanted > 0 and wanted >= q.get(JSON, 0.0)


def failed_before_execution(body: Any) -> bool:
    """No data, and no error with a path: parsing or validation refused it."""
    if not isinstance(body, dict) or body.get("data") is not None or not body.get("errors"):
        return False
    return all("path" not in error for error in body["errors"])


def response_status(body: Any, status: int, modern: bool) -> int:
    """Under graphql-response+json, a request that failed before execution is a 400."""
    if modern and status == 200 and failed_before_execution(body):
        return 400
    return status


def refusal(exc: HTTPException, *, modern: bool, encode: Any) -> Response:
    """A request refused before execution, as a GraphQL error with a code."""
    body = error_body(code_of(exc), exc.reason)
    status = response_status(body, exc.status_code, modern)
    return Response(encode(body), status, media_type=GRAPHQL_RESPONSE_JSON if modern else JSON)
