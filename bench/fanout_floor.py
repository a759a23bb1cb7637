"""The floor for bench/fanout.py: what writing one prepared frame to every socket costs.

A bare Starlette app on the same uvicorn as ``walletql serve`` (uvloop, httptools, the
websockets-sansio websocket protocol, permessage-deflate off) that speaks just enough
graphql-transport-ws for the bench's client: ``connection_init`` gets an ack, a
``subscribe`` gets one prepared initial ``next``. It LISTENs on ``FLOOR_CHANNEL``; for each
notification it builds one ``next`` frame from the payload (the same shape as walletql's
``transactionStatus { seq status at }``) and writes it to every subscribed socket, one
after another, through ASGI ``send``. No GraphQL, no database reads, no per-subscriber state
beyond the socket and its operation id.

    python -m bench.fanout_floor --port PORT --dsn POSTGRES_DSN
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

FLOOR_CHANNEL = "walletql_bench_floor"
INITIAL = {"seq": "1", "status": "QUEUED", "at": "2026-01-01T00:00:00+00:00"}


def next_frame(op_id: str, event: dict[str, Any]) -> str:
    return json.dumps(
        {"id": op_id, "type": "next", "payload": {"data": {"transactionStatus": event}}}
    )


def build_app(dsn: str) -> Any:
    import asyncpg
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    subscribers: dict[WebSocket, str] = {}

    async def fan_out(frame: str) -> None:
        for socket in list(subscribers):
            with contextlib.suppress(Exception):
                await socket.send_text(frame)

    def on_notify(_c: object, _pid: int, _channel: str, payload: str) -> None:
        event = json.loads(payload)
        # One frame for all: the bench's client uses the same operation id on every socket.
        frame = next_frame("1", {"seq": str(event["seq"]), "status": event["status"],
                                 "at": event["at"]})  # fmt: skip
        asyncio.get_running_loop().create_task(fan_out(frame))

    async def graphql_ws(socket: WebSocket) -> None:
        await socket.accept(subprotocol="graphql-transport-ws")
        try:
            while True:
                message = json.loads(await socket.receive_text())
                if message["type"] == "connection_init":
                    await socket.send_text('{"type":"connection_ack"}')
                elif message["type"] == "subscribe":
                    subscribers[socket] = message["id"]
                    await socket.send_text(next_frame(message["id"], INITIAL))
                elif message["type"] == "ping":
                    await socket.send_text('{"type":"pong"}')
        except WebSocketDisconnect:
            pass
        finally:
            subscribers.pop(socket, None)

    async def healthz(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connection = await asyncpg.connect(dsn)
        await connection.add_listener(FLOOR_CHANNEL, on_notify)
        try:
            yield
        finally:
            await connection.close()

    return Starlette(
        routes=[Route("/healthz", healthz), WebSocketRoute("/graphql", graphql_ws)],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    from bench.fanout import raise_nofile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    raise_nofile()
    uvicorn.run(
        build_app(args.dsn),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # as walletql serves (walletql/server.py)
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
