"""Fixtures that start the real things: PostgreSQL, a migrated database per test, uvicorn,
anvil, moto, and the settings of a worker-running walletql on a chain."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3

from testkit import ROOT
from testkit.anvil import Anvil, anvil_available
from testkit.contracts import contracts_available
from testkit.env import PipelineSettings, chain_of, make_settings, pipeline_settings
from testkit.pipeline import Submitted, one_submitted
from testkit.postgres import fresh_database, postgres_server
from testkit.server import LiveServer
from testkit.sqs import MotoSqsServer
from walletql import pg_home
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory for a `walletql` process, under the repo."""
    path = ROOT / ".data" / f"cli-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    if os.geteuid() == 0:  # the cluster lives outside the data dir (walletql/pg_home.py)
        pg_home.forget(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL server to create test databases on: the configured one, else embedded."""
    data_dir = Path(os.environ.get("WALLETQL_TEST_PG_DIR", ROOT / ".data" / "test"))
    with postgres_server("WALLETQL_TEST_DATABASE_URL", data_dir=data_dir) as admin_dsn:
        yield admin_dsn


@pytest.fixture(scope="session")
async def template_database(pg_admin_url: str) -> AsyncIterator[str]:
    """A database migrated once; every test copies it (CREATE DATABASE … TEMPLATE)."""
    async with fresh_database(pg_admin_url, "walletql_tpl") as url:
        yield url.rpartition("/")[2]


@pytest.fixture
async def database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    async with fresh_database(pg_admin_url, template=template_database) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def signer(tmp_path: Path) -> DevSigner:
    """Mints tokens that a walletql whose data dir is ``tmp_path`` accepts."""
    return DevSigner(tmp_path)


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


@pytest.fixture
async def anvil_server(
    tmp_path: Path, database_url: str, anvil: Anvil
) -> AsyncIterator[LiveServer]:
    """walletql whose default chain is the anvil node."""
    settings = make_settings(tmp_path, database_url, chains=[chain_of(anvil)])
    async with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> PipelineSettings:
    """``pipeline(node, **overrides)``: settings for a worker-running walletql on ``node``
    (None: the embedded chain), in this test's data dir and database; see
    testkit.env.pipeline_settings."""

    def build(node: Anvil | None, **overrides: Any) -> Settings:
        return pipeline_settings(tmp_path, database_url, node, **overrides)

    return build


@pytest.fixture
def anvil_settings(pipeline: PipelineSettings, anvil: Anvil) -> Settings:
    """The pipeline on the session's anvil, with the default test timing."""
    return pipeline(anvil)


@pytest.fixture
def manual_settings(
    pipeline: PipelineSettings, manual_anvil: tuple[Anvil, AsyncWeb3[Any]]
) -> Settings:
    """The pipeline on a node of its own that mines only when told (``manual_anvil``)."""
    return pipeline(manual_anvil[0])


@pytest.fixture
async def manual_alice(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> AsyncIterator[Submitted]:
    """alice's transaction, submitted to a worker-running walletql on ``manual_anvil``."""
    async with one_submitted(manual_settings, signer, manual_anvil[1]) as alice:
        yield alice


@pytest.fixture(scope="module")
def moto_sqs() -> Iterator[MotoSqsServer]:
    with MotoSqsServer() as server:
        yield server


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
