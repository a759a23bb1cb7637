"""Ethereum JSON-RPC transports behind the chain port: plain JSON over HTTP (httpx).

A transport sends one request and returns its ``result``; a node's error answer raises
``RpcError``, a transport failure (connection, HTTP status, bad body) raises
``TransportFailed``. Everything about Ethereum itself (formats, reverts, retries) lives in
``services/chains.py``, once for every transport.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class TransportFailed(Exception):
    """The request did not get a JSON-RPC answer (connection, HTTP status, bad body)."""


class Transport(Protocol):
    async def request(self, method: str, params: list[Any]) -> Any: ...

    async def close(self) -> None: ...


class HttpTransport:
    """JSON-RPC 2.0 over HTTP(S), one pooled client per node."""

    def __init__(self, url: str, timeout: float) -> None:
        import httpx

        self._url = url
        self._client = httpx.AsyncClient(timeout=timeout, headers={"accept": "application/json"})
        self._ids = itertools.count(1)

    async def request(self, method: str, params: list[Any]) -> Any:
        import httpx

        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = await self._client.post(self._url, json=payload)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The URL may carry an API key: name the failure, never the request.
            raise TransportFailed(f"{method}: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise TransportFailed(f"{method}: the node's answer is not a JSON-RPC object")
        error = body.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise RpcError(-32603, str(error))
            raise RpcError(
                int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
            )
        return body.get("result")

    async def close(self) -> None:
        await self._client.aclose()
