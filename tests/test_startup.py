"""Every process at start: provider-style database URLs serve; an unusable URL or a database
at the wrong migration is one line on stderr and exit 2, with no traceback and no password."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from testkit.env import clean_env
from testkit.net import free_port, wait_http
from testkit.postgres import asyncpg_dsn, create_database, drop_database
from testkit.process import WALLETQL
from tests.serve_support import sessions_while_serving
from walletql.devauth import DevSigner
from walletql.schema_version import script_revisions

PASSWORD = "Hunter2-never-printed"
# The worker needs JSON-RPC chains; it refuses to start before it would ever call this one.
UNREACHABLE_CHAIN = json.dumps([{"chain_id": 31337, "name": "n", "rpc_url": "http://127.0.0.1:9"}])
LAMBDA_START = "from worker.lambda_handler import handler; handler({'Records': []}, None)"


def form(url: str, scheme: str, query: str = "") -> str:
    """``url`` (any accepted scheme) with another scheme and query string."""
    _, _, rest = url.partition("://")
    return f"{scheme}://{rest}{query}"


async def start(command: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run one start-up (serve, worker, migrate, or the Lambda handler); exit code, stderr."""
    argv = [sys.executable, "-c", LAMBDA_START] if command == "lambda" else [*WALLETQL, command]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    # Every command first names its data directory; the rest is what went wrong.
    lines = err.decode().strip().splitlines()
    return proc.returncode, [line for line in lines if not line.startswith("walletql: data dir")]


@pytest.fixture
async def empty_database(pg_admin_url: str) -> AsyncIterator[str]:
    """A database nobody migrated (asyncpg DSN form)."""
    name = f"walletql_e_{uuid.uuid4().hex[:10]}"
    url = await create_database(pg_admin_url, name)
    try:
        yield asyncpg_dsn(url)
    finally:
        await drop_database(pg_admin_url, name)


async def serve_and_use(env: dict[str, str], data_dir: Path) -> dict[str, object]:
    """Start ``walletql serve``, create a user and read it back; the ``me`` answer."""
    port = free_port()
    env = {**env, "WALLETQL_DATA_DIR": str(data_dir), "WALLETQL_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"authorization": f"Bearer {DevSigner(data_dir).mint('carol')}"}
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_http(f"{base}/healthz", proc, seconds=60)
            create = 'mutation { createUser(input: {password: "correct horse"}) { sub } }'
            created = await client.post(f"{base}/graphql", json={"query": create}, headers=headers)
            assert created.json() == {"data": {"createUser": {"sub": "carol"}}}
            me = await client.post(
                f"{base}/graphql", json={"query": "{ me { sub } }"}, headers=headers
            )
            answer: dict[str, object] = me.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return answer


async def test_serve_with_a_postgres_url_and_its_parameters(
    database_url: str, tmp_path: Path
) -> None:
    app_name = f"walletql-{uuid.uuid4().hex[:8]}"
    url = form(database_url, "postgres", f"?application_name={app_name}&connect_timeout=10")
    env = clean_env(WALLETQL_DATABASE_URL=url, WALLETQL_DATA_DIR=str(tmp_path))
    # The engine's pool and the LISTEN connection both came from the parsed URL.
    names = await sessions_while_serving(env, url, app_name)
    assert any(row["query"].startswith("LISTEN") for row in names), names


@pytest.mark.parametrize(
    ("scheme", "query"), [("postgres", ""), ("postgresql", "?sslmode=disable")]
)
async def test_serve_answers_with_provider_style_urls(
    database_url: str, tmp_path: Path, scheme: str, query: str
) -> None:
    env = clean_env(WALLETQL_DATABASE_URL=form(database_url, scheme, query))
    assert await serve_and_use(env, tmp_path) == {"data": {"me": {"sub": "carol"}}}


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "schema", "lambda"])
async def test_an_unusable_url_stops_every_command_in_one_line(command: str) -> None:
    env = clean_env(
        WALLETQL_DATABASE_URL=f"mysql://walletql:{PASSWORD}@db.example:3306/walletql",
        WALLETQL_CHAINS=UNREACHABLE_CHAIN,
    )
    status, lines = await start(command, env)
    assert status == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("walletql: invalid settings: WALLETQL_DATABASE_URL: the 'mysql'")
    assert PASSWORD not in lines[0]


@pytest.mark.parametrize("command", ["serve", "worker", "lambda"])
async def test_an_unmigrated_database_is_refused_in_one_line(
    empty_database: str, command: str, tmp_path: Path
) -> None:
    env = clean_env(
        WALLETQL_DATABASE_URL=empty_database,
        WALLETQL_CHAINS=UNREACHABLE_CHAIN,
        WALLETQL_DATA_DIR=str(tmp_path),
        WALLETQL_PORT=str(free_port()),
    )
    status, lines = await start(command, env)
    assert status == 2
    (head,) = script_revisions()[0]
    assert lines == [
        "walletql: the database is not at the latest migration (it is at no migration; this "
        f"walletql needs {head}): run `walletql migrate`, or set WALLETQL_MIGRATE_ON_START=true"
    ]


async def test_migrate_on_start_migrates_then_serves(empty_database: str, tmp_path: Path) -> None:
    env = clean_env(WALLETQL_DATABASE_URL=empty_database, WALLETQL_MIGRATE_ON_START="true")
    assert await serve_and_use(env, tmp_path) == {"data": {"me": {"sub": "carol"}}}
    conn = await asyncpg.connect(empty_database)
    version = await conn.fetchval("SELECT version_num FROM alembic_version")
    await conn.close()
    assert {version} == script_revisions()[0]


@pytest.mark.parametrize(
    ("command", "migrate_on_start"),
    [("serve", "false"), ("serve", "true"), ("worker", "true"), ("migrate", ""), ("lambda", "")],
)
async def test_a_database_ahead_of_the_code_is_refused(
    database_url: str, command: str, migrate_on_start: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(form(database_url, "postgresql"))
    await conn.execute("UPDATE alembic_version SET version_num = 'f00dcafe1234'")
    await conn.close()
    env = clean_env(
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_CHAINS=UNREACHABLE_CHAIN,
        WALLETQL_DATA_DIR=str(tmp_path),
        WALLETQL_PORT=str(free_port()),
    )
    if migrate_on_start:
        env["WALLETQL_MIGRATE_ON_START"] = migrate_on_start
    status, lines = await start(command, env)
    assert status == 2
    assert lines == [
        "walletql: the database is at migration f00dcafe1234, which this walletql does not know "
        "(newer code migrated it): deploy that code again, or downgrade the database with it "
        "first"
    ]


async def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = clean_env(
        WALLETQL_DATABASE_URL=f"postgresql://walletql:{PASSWORD}@127.0.0.1:{port}/walletql",
        WALLETQL_DATA_DIR=str(tmp_path),
    )
    status, lines = await start("serve", env)
    assert status == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"walletql: cannot connect to the database at 127.0.0.1:{port}/")
    assert PASSWORD not in lines[0]


def test_the_cheap_revision_reader_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from walletql.migrate import MIGRATIONS_DIR

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    heads, known = script_revisions()
    assert heads == set(script.get_heads())
    assert known == {revision.revision for revision in script.walk_revisions()}
