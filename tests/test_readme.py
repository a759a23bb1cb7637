"""The README as a script: its blocks marked ``run`` (```sh run, ```graphql run) are run in
order against a real `walletql serve` on the embedded defaults, as a newcomer would paste them.

- ``sh`` blocks run in bash; variables they set (``TOKEN=…``) carry over to later blocks, and
  ``127.0.0.1:8000`` becomes the test server's address.
- ``graphql`` blocks are sent with ``$TOKEN`` as the bearer token, one operation at a time;
  variables come from earlier answers (``$id``: the last submitted transaction). A
  subscription runs over the websocket until it completes. ``error=CODE`` in the fence's info
  string expects that error code instead of data.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, OperationType, parse, print_ast
from websockets.asyncio.client import connect

from testkit import ROOT
from tests.serve_support import ServeProcess, clean_env

BLOCK = re.compile(r"^```(\w+)[ \t]*([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass
class Block:
    lang: str
    flags: list[str]
    code: str

    @property
    def expected_error(self) -> str | None:
        found = [f.split("=", 1)[1] for f in self.flags if f.startswith("error=")]
        return found[0] if found else None


def runnable_blocks(readme: str) -> list[Block]:
    blocks = [Block(m[1], m[2].split(), m[3]) for m in BLOCK.finditer(readme)]
    return [b for b in blocks if "run" in b.flags]


@dataclass
class Session:
    server: ServeProcess
    shell_env: dict[str, str]
    state_file: Path
    values: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def sh(self, code: str) -> str:
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{self.server.port}")
        script = (
            f"set -euo pipefail; [ -f {self.state_file} ] && source {self.state_file}; set -a\n"
            f"{code}\nset +a; declare -px > {self.state_file}"
        )
        done = subprocess.run(
            ["bash", "-c", script], env=self.shell_env, capture_output=True, text=True,
            cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{code}\n--- stderr:\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def token(self) -> str:
        out = self.sh('printf %s "$TOKEN"')
        assert out, "no earlier block set TOKEN"
        return out

    def variables(self, op: OperationDefinitionNode) -> dict[str, Any]:
        names = [v.variable.name.value for v in op.variable_definitions or ()]
        missing = [n for n in names if n not in self.values]
        assert not missing, f"no earlier answer gave {missing}"
        return {n: self.values[n] for n in names}

    def remember(self, data: dict[str, Any]) -> None:
        if created := data.get("createUser"):
            self.values.update(userId=created["id"], address=created["wallet"]["address"])
        if submitted := data.get("submitTransaction"):
            self.values["id"] = submitted["id"]

    async def graphql(self, block: Block) -> None:
        for op in parse(block.code).definitions:
            assert isinstance(op, OperationDefinitionNode)
            query, variables = print_ast(op), self.variables(op)
            if op.operation is OperationType.SUBSCRIPTION:
                results = await self.subscribe(query, variables)
                self.log.append(f"{query} -> {results}")
                assert results, query
                assert all("errors" not in r for r in results), results
                continue
            body = await self.server.graphql(query, variables, token=self.token())
            self.log.append(f"{query} -> {json.dumps(body)[:300]}")
            if block.expected_error:
                codes = [e["extensions"]["code"] for e in body.get("errors", [])]
                assert codes == [block.expected_error], (query, body)
            else:
                assert "errors" not in body, (query, body)
                self.remember(body["data"])

    async def subscribe(self, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        url = self.server.graphql_url.replace("http://", "ws://")
        results: list[dict[str, Any]] = []
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            init = {"authorization": f"Bearer {self.token()}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            payload = {"query": query, "variables": variables}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            while (message := json.loads(await ws.recv()))["type"] != "complete":
                assert message["type"] == "next", message
                results.append(message["payload"])
        return results


def shell_env(server: ServeProcess, bin_dir: Path) -> dict[str, str]:
    env = dict(server.env)
    path = [str(ROOT / ".venv" / "bin"), env.get("PATH", "")]
    if shutil.which("uv", path=os.pathsep.join(path)) is None:
        # uv installed as a module only (python3 -m uv), as `make` does on a fresh machine.
        shim = bin_dir / "uv"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m uv "$@"\n')
        shim.chmod(0o755)
        path.insert(0, str(bin_dir))
    env["PATH"] = os.pathsep.join(path)
    return env


async def test_the_readme_runs_as_written(data_dir: Path, tmp_path: Path) -> None:
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    assert {b.lang for b in blocks} == {"sh", "graphql"}, "the README marks blocks to run"
    server = await ServeProcess(clean_env(WALLETQL_DATA_DIR=str(data_dir))).start()
    session = Session(server, shell_env(server, tmp_path), tmp_path / "shell-state")
    try:
        for block in blocks:
            if block.lang == "sh":
                out = session.sh(block.code)
                session.log.append(out)
                if out.startswith("{"):  # a GraphQL answer from curl
                    assert "errors" not in json.loads(out), out
            else:
                await session.graphql(block)
    finally:
        assert await server.stop() == 0
    # The walk-through ends with the submitted transaction confirmed, seen by the subscription.
    assert any("CONFIRMED" in line for line in session.log), session.log
