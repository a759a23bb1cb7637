"""walletql (or any ASGI app) under a real uvicorn in this process, on a free port."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from testkit import graphql
from walletql.frame_writer import FrameWritingWebSocket


class LiveServer:
    """An ASGI app under a real uvicorn, bound to 127.0.0.1 on a free port, with the websocket
    protocol ``walletql serve`` uses (its frame writer; without the connection limits)."""

    def __init__(
        self, app: ASGIApp, *, send_buffer: int | None = None, ws_ping_interval: float | None = 20
    ) -> None:
        """``ws_ping_interval=None``: no keepalive pings (a test's client that reads nothing
        for longer than uvicorn's ping timeout keeps its socket)."""
        self.app = app
        self._sock = socket.socket()
        if send_buffer is not None:
            # Accepted sockets inherit it; a fixed size turns off the kernel's autotuning,
            # so backpressure from a client that does not read shows at test-sized volumes.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.graphql_url = f"{self.url}/graphql"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws=FrameWritingWebSocket,
            ws_ping_interval=ws_ping_interval,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()

    async def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one operation; return the decoded JSON body."""
        async with httpx.AsyncClient(timeout=120) as client:
            return await graphql.post(
                client, self.graphql_url, query, variables, token=token, headers=headers
            )
