"""The layers hold: the edges (GraphQL, the worker) depend on the services, never back.
Also: the worker process loads nothing of the GraphQL stack."""

from __future__ import annotations

import ast
import asyncio
import json
import signal
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.anvil import Anvil
from testkit.env import chain_of, clean_env
from testkit.process import start_walletql

GRAPHQL_STACK = ("schema", "resolvers", "strawberry", "graphql", "starlette", "uvicorn")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offending_imports(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    offending: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path) if m.split(".")[0] in forbidden)
        if bad:
            offending[str(path.relative_to(ROOT))] = bad
    return offending


@pytest.mark.parametrize("folder", ["worker", "services", "db"])
def test_lower_layers_never_import_the_graphql_layer(folder: str) -> None:
    assert offending_imports(folder, GRAPHQL_STACK) == {}


def test_resolvers_never_import_the_database_layer() -> None:
    assert offending_imports("resolvers", ("db",)) == {}


def test_db_imports_only_the_domain_vocabulary_from_above() -> None:
    above = offending_imports("db", ("services", "worker", "walletql"))
    assert {f: m for f, m in above.items() if m != ["services.domain"]} == {}


async def test_walletql_worker_loads_no_graphql_stack(
    database_url: str, tmp_path: Path, anvil: Anvil
) -> None:
    env = clean_env(
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_DATA_DIR=str(tmp_path),
        # The worker checks at start that its chains answer.
        WALLETQL_CHAINS=json.dumps([chain_of(anvil)]),
        WALLETQL_QUEUE_WAIT_SECONDS="0.2",
    )
    proc = await start_walletql(
        "worker", env=env, python_args=("-X", "importtime"), stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
        assert line, f"the worker exited before it started: {''.join(lines[-20:])}"
        lines.append(line)
        if "worker started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = await asyncio.wait_for(proc.stderr.read(), timeout=60)
    assert await proc.wait() == 0
    lines += rest.decode().splitlines()
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in lines
        if line.startswith("import time:") and "|" in line
    }
    assert "services.pipeline" in loaded, "the importtime report covers the worker's modules"
    top_level = {name.split(".")[0] for name in loaded}
    assert top_level.isdisjoint(GRAPHQL_STACK), sorted(top_level & set(GRAPHQL_STACK))
