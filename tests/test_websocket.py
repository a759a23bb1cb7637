"""graphql-transport-ws: the token goes in connection_init; a bad one closes with 4403."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from testkit.env import make_settings
from testkit.server import LiveServer
from testkit.ws import PROTOCOL
from walletql.app import create_app
from walletql.devauth import DevSigner


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_query_over_websocket_with_token_in_connection_init(
    server: LiveServer, signer: DevSigner
) -> None:
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
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
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"type": "connection_init", "payload": payload})
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_expired_token_closes_with_4403(server: LiveServer, signer: DevSigner) -> None:
    expired = signer.mint("alice", ttl=-3600)
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(
            ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {expired}"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def closed_with(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await drain(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def drain(ws: ClientConnection) -> None:
    while True:
        await receive(ws)


async def acked(server: LiveServer, token: str) -> ClientConnection:
    ws = await connect(server.ws_url, subprotocols=[PROTOCOL])
    await send(ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert (await receive(ws))["type"] == "connection_ack"
    return ws


async def test_no_init_within_the_timeout_closes_with_4408(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, ws_init_timeout_seconds=0.5)
    async with (
        LiveServer(create_app(settings)) as server,
        connect(server.ws_url, subprotocols=[PROTOCOL]) as ws,
    ):
        assert await closed_with(ws) == 4408


async def test_subscribe_before_ack_closes_with_4401(server: LiveServer) -> None:
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        assert await closed_with(ws) == 4401


async def test_duplicate_operation_id_closes_with_4409(
    server: LiveServer, signer: DevSigner
) -> None:
    ws = await acked(server, signer.mint("alice"))
    subscription = "subscription { myTransactions { seq } }"
    await server.graphql(
        'mutation { createUser(input: {password: "long enough"}) { id } }',
        token=signer.mint("alice"),
    )
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": subscription}})
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": subscription}})
    assert await closed_with(ws) == 4409


async def test_second_init_closes_with_4429(server: LiveServer, signer: DevSigner) -> None:
    ws = await acked(server, signer.mint("alice"))
    await send(
        ws,
        {"type": "connection_init", "payload": {"authorization": f"Bearer {signer.mint('alice')}"}},
    )
    assert await closed_with(ws) == 4429


@pytest.mark.parametrize(
    "raw",
    ['{"type": "nonsense"}', "not json", '{"id": 5, "type": "subscribe"}'],
    ids=["type", "json", "shape"],
)
async def test_invalid_message_closes_with_4400(
    server: LiveServer, signer: DevSigner, raw: str
) -> None:
    ws = await acked(server, signer.mint("alice"))
    await ws.send(raw)
    assert await closed_with(ws) == 4400


async def test_ping_gets_a_pong(server: LiveServer, signer: DevSigner) -> None:
    ws = await acked(server, signer.mint("alice"))
    await send(ws, {"type": "ping"})
    assert await receive(ws) == {"type": "pong"}
    await ws.close()


async def test_subscriptions_per_connection_are_capped(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, ws_max_subscriptions=2)
    signer = DevSigner(tmp_path)
    async with LiveServer(create_app(settings)) as server:
        token = signer.mint("alice")
        await server.graphql(
            'mutation { createUser(input: {password: "long enough"}) { id } }', token=token
        )
        ws = await acked(server, token)
        for op in ("1", "2", "3"):
            await send(
                ws,
                {
                    "id": op,
                    "type": "subscribe",
                    "payload": {"query": "subscription { myTransactions { seq } }"},
                },
            )
        refused = await receive(ws)
        await ws.close()
    assert refused["id"] == "3"
    assert refused["type"] == "error"
    assert "limit" in refused["payload"][0]["message"].lower()


async def test_socket_is_closed_when_the_init_token_expires(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, jwt_leeway_seconds=1)
    signer = DevSigner(tmp_path)
    async with LiveServer(create_app(settings)) as server:
        ws = await acked(server, signer.mint("alice", ttl=1))
        with pytest.raises(ConnectionClosed) as closed:
            await drain(ws)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Token expired")


async def test_cross_origin_pages_need_an_allowed_origin(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, allowed_origins=["https://app.example"])
    async with LiveServer(create_app(settings)) as server:
        async with connect(
            server.ws_url, subprotocols=[PROTOCOL], origin=Origin("https://app.example")
        ) as ws:
            await send(ws, {"type": "ping"})
            assert await receive(ws) == {"type": "pong"}
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                server.ws_url, subprotocols=[PROTOCOL], origin=Origin("https://evil.example")
            )
        assert refused.value.response.status_code == 403
