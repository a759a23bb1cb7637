"""GraphQL over HTTP as a client sends it, and reading the answers."""

from __future__ import annotations

import json
from typing import Any

import httpx


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def post(
    client: httpx.AsyncClient,
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one operation; the decoded JSON body (errors and all)."""
    sent = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        sent.update(bearer(token))
    # json.dumps escapes to ASCII: a lone surrogate is sent as \ud800, like a browser.
    sent_body = json.dumps({"query": query, "variables": variables or {}})
    response = await client.post(url, content=sent_body, headers=sent)
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    return body


async def data(
    client: httpx.AsyncClient,
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str,
) -> dict[str, Any]:
    """POST one operation that must succeed; its ``data`` (RuntimeError on any error)."""
    body = await post(client, url, query, variables, token=token)
    if body.get("errors") or "data" not in body:
        raise RuntimeError(f"GraphQL error: {body}")
    result: dict[str, Any] = body["data"]
    return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    errors = body.get("errors") or []
    assert len(errors) == 1, body
    error: dict[str, Any] = errors[0]
    return error
