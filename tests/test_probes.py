"""The attack probes of issue 13, each sent to a real `walletql serve` process.

After each probe the process must still answer /healthz, and its resident memory (VmRSS
from /proc) must stay within ``RSS_GROWTH_BOUND`` of what it used before the probes.
Different probes connect from different loopback addresses (127.0.0.x), because the server
also caps connections per client IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from testkit.env import clean_env
from testkit.graphql import error_codes
from testkit.postgres import fresh_database
from testkit.process import ServerProcess, run_walletql
from tests import raw_http

RSS_GROWTH_BOUND = 150 * 1024 * 1024  # bytes; the unbounded server grew by 600 MB and more
HEADER_TIMEOUT = 2  # seconds, WALLETQL_HEADER_READ_TIMEOUT_SECONDS of the probed server
MAX_PER_IP = 50
SUBPROTOCOLS = [Subprotocol("graphql-transport-ws")]
DEEP = "[" * 100_000 + "]" * 100_000


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, token: str, log: Path):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"
        self.token = token
        self.log = log
        self.baseline_rss = 0

    def rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        return int(kib) * 1024

    async def alive(self) -> None:
        """The process answers /healthz and has not grown past the bound."""
        assert self.proc.returncode is None, "walletql serve died"
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"{self.url}/healthz")
        assert response.json() == {"ok": True}
        assert self.rss() - self.baseline_rss < RSS_GROWTH_BOUND

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"authorization": f"Bearer {self.token}"},
            )
        return response.json()


@pytest.fixture(scope="module")
async def served(
    pg_admin_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    data_dir = tmp_path_factory.mktemp("probes")
    log = data_dir / "serve.log"
    async with fresh_database(pg_admin_url, "walletql_probe", template=template_database) as url:
        env = clean_env(
            WALLETQL_DATA_DIR=str(data_dir),
            WALLETQL_DATABASE_URL=url,
            WALLETQL_HEADER_READ_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
            WALLETQL_BODY_READ_TIMEOUT_SECONDS="2",
            WALLETQL_WS_INIT_TIMEOUT_SECONDS="2",
            WALLETQL_MAX_CONNECTIONS_PER_IP=str(MAX_PER_IP),
        )
        with log.open("wb") as sink:
            server = ServerProcess(env, ("serve",), stdout=sink, stderr=subprocess.STDOUT)
            async with server:
                _, token, _ = await run_walletql("token", "prober", env=env)
                assert server.proc is not None
                live = Served(server.proc, server.port, token.strip(), log)
                # Warm up: the first requests import the signing stack; that is not growth.
                await live.graphql(
                    'mutation { createUser(input: {password: "correct horse"}) { id } }'
                )
                await live.graphql("{ transactions(first: 5) { edges { cursor } } me { id } }")
                live.baseline_rss = live.rss()
                yield live


async def test_deep_json_over_http(served: Served) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            f"{served.url}/graphql",
            content=b'{"query": "{ chains { name } }", "variables": {"v": ' + DEEP.encode() + b"}}",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    await served.alive()


async def test_deep_json_over_websocket(served: Served) -> None:
    async with connect(served.ws_url, subprotocols=SUBPROTOCOLS) as ws:
        await ws.send('{"type": "connection_init", "payload": {"a": ' + DEEP + "}}")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    await served.alive()


async def test_deep_json_in_typed_data(served: Served) -> None:
    sign = (
        'mutation($t: JSON!) { signTypedData(input: {typedData: $t, password: "x"}) { signature } }'
    )
    body = await served.graphql(sign, {"t": DEEP})  # JSON.stringify'd typed data, as text
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "typedData"
    await served.alive()


async def test_quadratic_typed_data(served: Served) -> None:
    sign = (
        'mutation($t: JSON!) { signTypedData(input: {typedData: $t, password: "x"}) { signature } }'
    )
    # 144 KB of nested structs: validation used to build a path string at every level.
    nested = '{"next": [' * 12_000 + "]}" * 12_000
    text = (
        '{"types": {"EIP712Domain": [], "Node": [{"name": "next", "type": "Node[]"}]}, '
        '"primaryType": "Node", "domain": {}, "message": ' + nested + "}"
    )
    body = await served.graphql(sign, {"t": text})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await served.graphql(sign, {"t": json.loads(text.replace(nested, "{}"))})
    assert error_codes(body) == ["BAD_USER_INPUT"]  # message.next is missing
    # As wide as the body allows, within the depth: linear work, then the password check.
    wide = json.loads(text.replace(nested, '{"next": []}'))
    wide["message"] = {"next": [{"next": []}] * 10_000}
    body = await served.graphql(sign, {"t": wide})
    assert error_codes(body) == ["WRONG_PASSWORD"]
    await served.alive()


async def test_fragment_bomb(served: Served) -> None:
    fragments = "".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} ...F{i + 1} }}" for i in range(20)
    )
    body = await served.graphql(
        "{ ...F0 } " + fragments + " fragment F20 on Query { chains { name } }"
    )
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    await served.alive()


async def test_fifteen_alias_amplification(served: Served) -> None:
    inner = (
        "transactions(first: 100) { edges { node { events { transaction { events { "
        "transaction { id } } } } } } }"
    )
    body = await served.graphql("{ " + " ".join(f"a{i}: {inner}" for i in range(15)) + " }")
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    await served.alive()


async def test_a_64_mb_body(served: Served) -> None:
    size = 64 * 1024 * 1024
    # A client that asks first (Expect: 100-continue, as curl does for large bodies) gets
    # the refusal before it sends a byte of the body.
    head = raw_http.post_head("/graphql", content_length=size, expect_continue=True)
    status, body = await raw_http.request(served.port, head, raw_http.plain(0, 0))
    assert status == 413
    assert error_codes(body) == ["PAYLOAD_TOO_LARGE"]
    # A chunked body is counted as it arrives and refused once past the cap.
    status, body = await raw_http.request(
        served.port, raw_http.post_head("/graphql"), raw_http.chunked(pieces=17, size=65536)
    )
    assert status == 413
    assert error_codes(body) == ["PAYLOAD_TOO_LARGE"]
    # A client that just sends all 64 MB: refused unread (the refusal may be lost to the
    # reset that closing an unread socket causes); what matters is the server.
    for head in (
        raw_http.post_head("/graphql", content_length=size),
        raw_http.post_head("/graphql"),
    ):
        pieces = raw_http.plain if b"content-length" in head else raw_http.chunked
        status, body = await raw_http.request(served.port, head, pieces(1024, size // 1024))
        assert (status, error_codes(body or {})) in ((413, ["PAYLOAD_TOO_LARGE"]), (0, []))
    await served.alive()


async def test_eighty_distinct_4_mb_queries_and_eighty_just_under_the_cap(served: Served) -> None:
    size = 4 * 1024 * 1024
    for i in range(80):
        head = raw_http.post_head("/graphql", content_length=size)
        status, body = await raw_http.request(
            served.port, head, raw_http.plain(pieces=64, size=size // 64, fill=b"%d " % i)
        )
        assert status == 413
        assert body is not None
        assert error_codes(body) == ["PAYLOAD_TOO_LARGE"]
    await served.alive()
    # Valid, distinct, just under the body cap: parsed once each, never cached.
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(80):
            query = "{ chains { name } } #" + f"{i:04d}" * (900_000 // 4) + "\n"
            response = await client.post(f"{served.url}/graphql", json={"query": query})
            assert response.json() == {"data": {"chains": [{"name": "embedded"}]}}
    await served.alive()


async def _slow_headers(source: str, port: int) -> bytes:
    """Send a request line and headers one byte at a time; what the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    request = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x-slow: " + b"a" * 200
    received = b""
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    received += await reader.read(1024)
            if reader.at_eof():
                return received
    except ConnectionError:
        return received
    finally:
        writer.close()
    raise AssertionError("the server never cut off a client sending headers byte by byte")


async def test_slowloris_clients_are_cut_off(served: Served) -> None:
    # 40 sockets dribbling headers, and 40 that send nothing at all.
    dribbling = [_slow_headers("127.0.0.3", served.port) for _ in range(40)]
    idle = [
        asyncio.open_connection("127.0.0.1", served.port, local_addr=("127.0.0.4", 0))
        for _ in range(40)
    ]
    opened = await asyncio.gather(*idle)
    answers = await asyncio.gather(*dribbling)
    assert answers == [b""] * 40  # closed without an answer: the headers never completed
    for reader, writer in opened:
        async with asyncio.timeout(30):
            assert await reader.read() == b""
        writer.close()
    await served.alive()


async def test_slow_bodies_get_408(served: Served) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b'{"query": "'
        await asyncio.sleep(60)

    status, body = await raw_http.request(
        served.port, raw_http.post_head("/graphql", content_length=1000), slow()
    )
    assert status == 408
    assert body is not None
    assert error_codes(body) == ["REQUEST_TIMEOUT"]
    await served.alive()


async def test_websockets_that_never_init_are_closed_with_4408(served: Served) -> None:
    async def never_init() -> int:
        async with connect(
            served.ws_url,
            subprotocols=SUBPROTOCOLS,
            local_addr=("127.0.0.5", 0),
        ) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code

    codes = await asyncio.gather(*(never_init() for _ in range(40)))
    assert codes == [4408] * 40
    await served.alive()


async def _healthz_from(served: Served, source: str) -> tuple[int, Any]:
    return await raw_http.request(
        served.port,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
        raw_http.plain(0, 0),
        source=source,
    )


async def test_connections_per_ip_are_capped(served: Served) -> None:
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {served.token}"}}
    sockets = []
    try:
        for _ in range(MAX_PER_IP):  # acknowledged websockets stay open: no timeout applies
            ws = await connect(
                served.ws_url,
                subprotocols=SUBPROTOCOLS,
                local_addr=("127.0.0.2", 0),
            )
            sockets.append(ws)
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
        status, body = await _healthz_from(served, "127.0.0.2")
        assert status == 429
        assert error_codes(body) == ["RATE_LIMITED"]
        assert await _healthz_from(served, "127.0.0.6") == (200, {"ok": True})
    finally:
        for ws in sockets:
            await ws.close()
    # Closed sockets free their slots (the server may take a moment to see the closes).
    for _ in range(100):
        answer = await _healthz_from(served, "127.0.0.2")
        if answer[0] != 429:
            break
        await asyncio.sleep(0.1)
    assert answer == (200, {"ok": True})
    await served.alive()


async def test_a_forged_log_line_stays_escaped_and_no_server_banner(served: Served) -> None:
    status, _ = await raw_http.request(
        served.port,
        b"GET /x%0aFORGED-LINE%0d%1b[31m HTTP/1.1\r\nhost: x\r\n\r\n",
        raw_http.plain(0, 0),
    )
    assert status == 404
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{served.url}/healthz")
    assert "server" not in response.headers
    lines = served.log.read_text(errors="replace").splitlines()
    assert not [line for line in lines if line.startswith("FORGED-LINE")]
    assert any("/x\\x0aFORGED-LINE\\x0d\\x1b[31m 404" in line for line in lines), lines[-5:]
    await served.alive()


async def test_a_websocket_message_over_the_cap_closes_with_1009(served: Served) -> None:
    async with connect(served.ws_url, subprotocols=SUBPROTOCOLS, max_size=None) as ws:
        # The server may close while the frame is still being written: send or recv raises.
        async def send_then_receive() -> None:
            await ws.send(
                '{"type": "connection_init", "payload": {"a": "' + "x" * 2_000_000 + '"}}'
            )
            await ws.recv()

        with pytest.raises(ConnectionClosed) as closed:
            await send_then_receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    await served.alive()
