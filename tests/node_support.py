"""Run the Node clients in tests/node (graphql-ws, Apollo Client, codegen) from a test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

import pytest

from testkit.anvil import NODE_DIR, NODE_MODULES


def require_node_package(name: str) -> None:
    """Skip (a failure in CI) when node or the npm package is missing."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / name / "package.json").is_file():
        pytest.skip(f"{name} is not installed: run `make node`")


async def run_node(
    script: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run tests/node/SCRIPT without blocking the event loop (a LiveServer may share it)."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_DIR / script),
        *args,
        cwd=NODE_DIR,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


async def node_json(
    script: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> Any:
    """Run a script that prints one JSON line last; that line, decoded."""
    code, out, err = await run_node(script, *args, timeout=timeout, env=env)
    assert code == 0, f"{script} exited {code}: {out}\n{err}"
    return json.loads(out.strip().splitlines()[-1])


__all__ = ["NODE_DIR", "node_json", "require_node_package", "run_node"]
