"""graphql-transport-ws: the token goes in connection_init; a bad one closes with 4403."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support import LiveServer
from walletql.devauth import DevSigner

PROTOCOL = "graphql-transport-ws"


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_query_over_websocket_with_token_in_connection_init(
    server: LiveServer, signer: DevSigner
) -> None:
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await send(
            ws,
            {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {signer.mint('alice')}"},
            },
        )
        assert (await receive(ws))["type"] == "connection_ack"
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        assert await receive(ws) == {"id": "1", "type": "next", "payload": {"data": {"me": None}}}
        assert await receive(ws) == {"id": "1", "type": "complete"}


@pytest.mark.parametrize(
    "payload",
    [{}, {"authorization": "Bearer nonsense"}, {"authorization": "nonsense"}],
    ids=["missing", "invalid", "no-scheme"],
)
async def test_bad_or_missing_token_closes_with_4403(
    server: LiveServer, payload: dict[str, str]
) -> None:
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", "payload": payload})
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_expired_token_closes_with_4403(server: LiveServer, signer: DevSigner) -> None:
    expired = signer.mint("alice", ttl=-3600)
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await send(
            ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {expired}"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
