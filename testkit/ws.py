"""graphql-transport-ws clients: a small one over the `websockets` package, and one that
stops reading its socket (the worst subscriber a server can have)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")


class GraphQLWS:
    """``async with GraphQLWS(url, token) as ws``: connected, and acknowledged when a token is
    given. ``connect_args`` go to ``websockets``' connect (compression, ping_interval, …)."""

    def __init__(self, url: str, token: str | None = None, **connect_args: Any) -> None:
        self.url = url
        self.token = token
        self._connect_args = connect_args
        self.ws: ClientConnection | None = None

    async def open(self) -> None:
        self.ws = await connect(self.url, subprotocols=[PROTOCOL], **self._connect_args)

    async def init(self, timeout: float | None = 30) -> None:
        """connection_init with the token; the server must answer connection_ack."""
        await self.send(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}}
        )
        ack = await self.receive(timeout)
        if ack["type"] != "connection_ack":
            raise AssertionError(f"no connection_ack: {ack}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def __aenter__(self) -> GraphQLWS:
        await self.open()
        if self.token is not None:
            await self.init()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float | None = 30) -> dict[str, Any]:
        assert self.ws is not None
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    async def collect(
        self,
        op_id: str,
        *,
        until_complete: bool = True,
        count: int | None = None,
        timeout: float = 30,
    ) -> list[dict[str, Any]]:
        """The `next` payloads of one operation, until it completes (or ``count`` arrive)."""
        found: list[dict[str, Any]] = []
        while True:
            message = await self.receive(timeout)
            if message.get("id") != op_id:
                continue
            if message["type"] == "next":
                found.append(message["payload"])
                if count is not None and len(found) >= count:
                    return found
            elif message["type"] == "complete":
                return found
            elif message["type"] == "error":
                raise AssertionError(f"operation error: {message}")


class StuckClient:
    """A graphql-transport-ws client that subscribes and then stops reading its socket
    altogether (no library buffering): the worst subscriber a server can have."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.sock: socket.socket | None = None

    def _frame(self, payload: dict[str, Any]) -> bytes:
        data = json.dumps(payload).encode()
        mask = os.urandom(4)
        header = bytearray([0x81])  # FIN + text
        if len(data) < 126:
            header.append(0x80 | len(data))
        else:
            header.append(0x80 | 126)
            header += struct.pack("!H", len(data))
        return bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    async def open(self, query: str, receive_buffer: int = 4096) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode(),
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(sock, 1)
        assert b" 101 " in response, response
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}}
        await loop.sock_sendall(sock, self._frame(init))
        subscribe = {"id": "stuck", "type": "subscribe", "payload": {"query": query}}
        await loop.sock_sendall(sock, self._frame(subscribe))
        self.sock = sock

    async def read_until(self, needle: bytes, timeout: float) -> bytes:
        """Start reading at last: every byte until ``needle`` shows up."""
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        seen = b""
        async with asyncio.timeout(timeout):
            while needle not in seen:
                chunk = await loop.sock_recv(self.sock, 65536)
                if not chunk:
                    break
                seen += chunk
        return seen

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
