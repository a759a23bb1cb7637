"""Ethereum JSON-RPC transports behind the chain port: plain JSON over HTTP (aiohttp).

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
    async def started(self) -> None:
        """Returns once the node can answer (the embedded chain's child process replays its
        journal first); not counted against a call's timeout."""
        ...

    async def request(self, method: str, params: list[Any]) -> Any: ...

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Each call's result, or the ``RpcError`` the node answered it with, in order."""
        ...

    async def close(self) -> None: ...


class HttpTransport:
    """JSON-RPC 2.0 over HTTP(S), one pooled aiohttp session per node, opened on first use
    (aiohttp: under 200 concurrent calls it answered 10x sooner than httpx here)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._session: Any = None
        self._ids = itertools.count(1)
        self._batches = True

    async def started(self) -> None:
        """A node over HTTP answers or not: nothing to wait for."""

    async def request(self, method: str, params: list[Any]) -> Any:
        body = await self._post(self._payload(method, params), method)
        if not isinstance(body, dict):
            raise TransportFailed(f"{method}: the node's answer is not a JSON-RPC object")
        answer = answer_of(body)
        if isinstance(answer, RpcError):
            raise answer
        return answer

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """One HTTP request for all the calls (a JSON-RPC batch). When that fails, the calls
        go one by one; a node that answers a batch without an answer to each call gets no
        batches later."""
        if self._batches:
            payloads = [self._payload(method, params) for method, params in calls]
            try:
                body = await self._post(payloads, "batch")
            except TransportFailed:  # a refusal by HTTP status, or a failure: one by one
                body = None
            else:
                if isinstance(body, list):
                    by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
                    if all(payload["id"] in by_id for payload in payloads):
                        return [answer_of(by_id[payload["id"]]) for payload in payloads]
                self._batches = False  # it answered, but not the batch
        answers: list[Any] = []
        for method, params in calls:
            try:
                answers.append(await self.request(method, params))
            except RpcError as exc:
                answers.append(exc)
        return answers

    def _payload(self, method: str, params: list[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    async def _post(self, payload: Any, what: str) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"accept": "application/json"},
            )
        try:
            async with self._session.post(self._url, json=payload) as response:
                response.raise_for_status()
                return await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            # The URL may carry an API key: name the failure, never the request.
            raise TransportFailed(f"{what}: {type(exc).__name__}") from exc

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def answer_of(body: dict[str, Any]) -> Any:
    """A JSON-RPC response's result, or its error as an ``RpcError``."""
    error = body.get("error")
    if error is None:
        return body.get("result")
    if not isinstance(error, dict):
        return RpcError(-32603, str(error))
    return RpcError(
        int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
    )
