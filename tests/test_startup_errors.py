"""A server that cannot start says why in one line naming the setting, and exits non-zero."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from testkit.anvil import Anvil
from testkit.net import free_port
from tests.serve_support import clean_env, run


async def serve_fails(tmp_path: Path, **settings: str) -> str:
    """Run `walletql serve`; its one line of error (after the data directory line)."""
    env = clean_env(WALLETQL_DATA_DIR=str(tmp_path), **settings)
    env.setdefault("WALLETQL_PORT", str(free_port()))
    status, _, err = await run("serve", env=env)
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == f"walletql: data directory {tmp_path}", err
    assert len(lines) == 2, err
    return lines[1]


def url_of(database_url: str, *, user: str | None = None, database: str | None = None) -> str:
    base, _, name = database_url.rpartition("/")
    scheme, _, rest = base.partition("://")
    if user is not None:
        rest = f"{user}@{rest.rpartition('@')[2]}"
    return f"{scheme}://{rest}/{database or name}"


async def test_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://walletql:s3cret@127.0.0.1:{free_port()}/walletql"
    line = await serve_fails(tmp_path, WALLETQL_DATABASE_URL=url)
    assert line.startswith("walletql: cannot connect to the database at 127.0.0.1:")
    assert line.endswith("(WALLETQL_DATABASE_URL): connection refused, retried for 5 s")
    assert "s3cret" not in line


async def test_a_database_that_does_not_exist(tmp_path: Path, database_url: str) -> None:
    url = url_of(database_url, database="walletql_no_such_db")
    line = await serve_fails(tmp_path, WALLETQL_DATABASE_URL=url)
    assert line.startswith("walletql: cannot connect to the database at ")
    assert line.endswith('(WALLETQL_DATABASE_URL): database "walletql_no_such_db" does not exist')


async def test_credentials_the_server_refuses(tmp_path: Path, database_url: str) -> None:
    url = url_of(database_url, user="walletql_nobody:s3cret")
    line = await serve_fails(tmp_path, WALLETQL_DATABASE_URL=url)
    assert line.startswith("walletql: cannot log in to the database at ")
    assert line.endswith('(WALLETQL_DATABASE_URL): role "walletql_nobody" does not exist')
    assert "s3cret" not in line


async def test_a_port_in_use(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await serve_fails(
            tmp_path, WALLETQL_DATABASE_URL=database_url, WALLETQL_PORT=str(port)
        )
    assert line == f"walletql: WALLETQL_PORT: 127.0.0.1:{port} is already in use " + (
        "(another walletql serve?)"
    )


async def test_a_chain_that_does_not_answer(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    chains = [{"chain_id": 31337, "name": "anvil", "rpc_url": f"http://127.0.0.1:{port}/key"}]
    line = await serve_fails(
        tmp_path, WALLETQL_DATABASE_URL=database_url, WALLETQL_CHAINS=json.dumps(chains)
    )
    assert line == (
        f"walletql: WALLETQL_CHAINS: chain 31337 (anvil) at http://127.0.0.1:{port}/…: "
        "no answer (connection refused)"
    )


async def test_a_chain_that_answers_with_another_chain_id(
    tmp_path: Path, database_url: str, anvil: Anvil
) -> None:
    chains = [{"chain_id": 5, "name": "goerli", "rpc_url": anvil.url}]
    line = await serve_fails(
        tmp_path, WALLETQL_DATABASE_URL=database_url, WALLETQL_CHAINS=json.dumps(chains)
    )
    assert line == (
        f"walletql: WALLETQL_CHAINS: chain 5 (goerli) at {anvil.url}: "
        "the node reports chain id 31337"
    )


async def test_a_chain_url_that_is_not_a_node(tmp_path: Path, database_url: str) -> None:
    # An HTTP server that is not a JSON-RPC node: it answers the POST with 404 or 405.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    server = await asyncio.start_server(not_found, "127.0.0.1", port)
    chains = [{"chain_id": 31337, "name": "anvil", "rpc_url": f"http://127.0.0.1:{port}/rpc"}]
    async with server:
        line = await serve_fails(
            tmp_path, WALLETQL_DATABASE_URL=database_url, WALLETQL_CHAINS=json.dumps(chains)
        )
    assert (
        line
        == f"walletql: WALLETQL_CHAINS: chain 31337 (anvil) at http://127.0.0.1:{port}/…: HTTP 404"
    )


async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()
    writer.close()
