"""walletql as a process of its own (`walletql serve`, `walletql worker`, …), on a free port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from testkit import ROOT
from testkit.net import free_port, wait_http

WALLETQL = (sys.executable, "-m", "walletql.cli")


async def start_walletql(
    *args: str,
    env: dict[str, str],
    python_args: Sequence[str] = (),
    stdout: int | IO[Any] = subprocess.DEVNULL,
    stderr: int | IO[Any] = subprocess.DEVNULL,
) -> asyncio.subprocess.Process:
    """``python [python_args] -m walletql.cli ARGS`` in the repository, with exactly ``env``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, *python_args, "-m", "walletql.cli", *args, env=env, cwd=ROOT,
        stdout=stdout, stderr=stderr,
    )  # fmt: skip


async def run_walletql(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run a `walletql` command to completion: (exit code, stdout, stderr)."""
    proc = await start_walletql(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def stop_process(
    proc: asyncio.subprocess.Process, timeout: float = 30, *, strict: bool = True
) -> None:
    """SIGTERM and wait; past ``timeout``, SIGKILL (by its own PID), and with ``strict`` raise
    TimeoutError then: a process that does not stop when asked is a failure."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        if strict:
            raise


@dataclass
class ServerProcess:
    """``async with ServerProcess(env, ("serve", "--no-worker")) as api: api.url`` — a `serve`
    is ready when /healthz answers. Never left running: killed when it does not come up, and
    when it does not stop on SIGTERM (that raises unless ``strict`` is off)."""

    env: dict[str, str]
    args: Sequence[str] = ("serve",)
    port: int = field(default_factory=free_port)
    strict: bool = True
    stdout: int | IO[Any] = subprocess.DEVNULL
    stderr: int | IO[Any] = subprocess.DEVNULL
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    async def __aenter__(self) -> ServerProcess:
        env = {**self.env, "WALLETQL_PORT": str(self.port)}
        self.proc = await start_walletql(
            *self.args, env=env, stdout=self.stdout, stderr=self.stderr
        )
        if self.args[0] == "serve":
            try:
                await wait_http(f"{self.url}/healthz", self.proc, seconds=60)
            except BaseException:
                await stop_process(self.proc, strict=False)
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            await stop_process(self.proc, strict=self.strict)
