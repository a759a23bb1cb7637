"""Fixtures that start the real things: PostgreSQL, a migrated database per test, uvicorn."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3

from tests.chain_support import Anvil, anvil_available, contracts_available
from tests.support import LiveServer, make_settings
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.migrate import upgrade
from walletql.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    base, _, _ = _asyncpg_dsn(url).rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL server to create test databases on: the configured one, else embedded."""
    configured = os.environ.get("WALLETQL_TEST_DATABASE_URL")
    if configured:
        yield _asyncpg_dsn(configured)
        return
    from walletql.embedded_pg import EmbeddedPostgres

    # Not under pytest's tmp dir: that is private to root, and as root the server runs as
    # 'nobody', which must be able to enter the data dir's parents.
    data_dir = Path(os.environ.get("WALLETQL_TEST_PG_DIR", ROOT / ".data" / "test"))
    data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(data_dir, database="postgres")
    server.start()
    try:
        yield _asyncpg_dsn(server.url)
    finally:
        server.stop()


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_database(pg_admin_url: str) -> AsyncIterator[str]:
    """A database migrated once; every test copies it (CREATE DATABASE … TEMPLATE)."""
    name = f"walletql_tpl_{uuid.uuid4().hex[:10]}"
    await _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = _with_database(pg_admin_url, name).replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, url)
    try:
        yield name
    finally:
        await _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    name = f"walletql_t_{uuid.uuid4().hex[:10]}"
    for attempt in range(50):
        try:
            await _admin(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
            break
        except asyncpg.ObjectInUseError:
            # "source database is being accessed by other users": autovacuum may visit
            # the template for a moment.
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)
    try:
        yield _with_database(pg_admin_url, name).replace(
            "postgresql://", "postgresql+asyncpg://", 1
        )
    finally:
        await _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def signer(settings: Settings) -> DevSigner:
    return DevSigner(settings.data_dir)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    """walletql served by a real uvicorn on a free port."""
    async with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node (HTTP JSON-RPC) for the session; tests use fresh wallets on it."""
    reason = anvil_available() or contracts_available()
    if reason:
        pytest.skip(reason)
    with Anvil(chain_id=31337) as node:
        yield node


@pytest.fixture
async def anvil_w3(anvil: Anvil) -> AsyncIterator[AsyncWeb3[Any]]:
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil.url))
    yield w3
    await w3.provider.disconnect()


@pytest.fixture
async def manual_anvil() -> AsyncIterator[tuple[Anvil, AsyncWeb3[Any]]]:
    """A node of its own with automine off: blocks come only from evm_mine."""
    reason = anvil_available()
    if reason:
        pytest.skip(reason)
    async with Anvil(chain_id=31337, no_mining=True) as node:
        w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
        yield node, w3
        await w3.provider.disconnect()


def anvil_chain(anvil: Anvil, **overrides: Any) -> dict[str, Any]:
    return {"chain_id": anvil.chain_id, "name": "anvil", "rpc_url": anvil.url, **overrides}


@pytest.fixture
async def anvil_server(
    tmp_path: Path, database_url: str, anvil: Anvil
) -> AsyncIterator[LiveServer]:
    """walletql whose default chain is the anvil node."""
    settings = make_settings(tmp_path, database_url, chains=[anvil_chain(anvil)])
    async with LiveServer(create_app(settings)) as live:
        yield live


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if IN_CI and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} test(s) were skipped, and in CI a skip is a failure",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
