"""A real `walletql serve` process, as a user starts it: start, talk GraphQL, stop or kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from db.url import parse_database_url
from testkit.net import free_port

WALLETQL = [sys.executable, "-m", "walletql.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")}
    return {**env, **extra}


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_until_up(
    client: httpx.AsyncClient, url: str, proc: asyncio.subprocess.Process
) -> None:
    for _ in range(600):
        if proc.returncode is not None:
            pytest.fail("serve exited early")
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    pytest.fail("serve did not come up in 60 s")


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie that nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class ServeProcess:
    """`walletql serve` on a free port; ``graphql`` has LiveServer's signature."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**env, "WALLETQL_PORT": str(self.port)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.graphql_url = f"{self.url}/graphql"
        self.proc: asyncio.subprocess.Process | None = None
        self.output = b""

    async def start(self) -> ServeProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *WALLETQL, "serve", env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        async with httpx.AsyncClient(timeout=10) as client:
            await wait_until_up(client, f"{self.url}/healthz", self.proc)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; the exit status (negative: killed by that signal)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout=60)
        self.output = err
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def token(self, sub: str) -> str:
        status, out, err = await run("token", sub, env=self.env)
        assert status == 0, err
        return out.strip()

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=120) as client:
            response = await client.post(
                self.graphql_url,
                json={"query": query, "variables": variables or {}},
                headers=headers,
            )
        body: dict[str, Any] = response.json()
        return body


# The sessions of one application, and whether each is encrypted (``a`` is the reader's own).
SESSIONS = (
    "SELECT a.query, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
    "WHERE a.application_name = $1 AND a.pid <> pg_backend_pid()"
)


async def sessions_while_serving(
    env: dict[str, str], url: str, app_name: str
) -> list[asyncpg.Record]:
    """Start `walletql serve` with ``env`` (the embedded chain) and see it answer; the
    database sessions it holds under ``app_name`` (read over ``url``); it then stops with 0."""
    serve = await ServeProcess(env).start()
    try:
        answer = await serve.graphql("{ chains { name } }")
        conn = await asyncpg.connect(**parse_database_url(url).asyncpg_kwargs())
        try:
            rows = list(await conn.fetch(SESSIONS, app_name))
        finally:
            await conn.close()
    finally:
        status = await serve.stop()
    assert status == 0, serve.output.decode()
    assert answer == {"data": {"chains": [{"name": "embedded"}]}}
    return rows
