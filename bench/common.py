"""Shared pieces of the benchmarks: a fresh database, a walletql server process, anvil,
and the table every script prints. Each script compares against a baseline measured in the
same run; trust the ratios, not the absolute times (these machines are noisy)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data" / "bench"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table (it goes into the README as it is)."""
    cells = [[str(c) for c in header], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n### {title}\n")
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """An admin DSN: WALLETQL_BENCH_DATABASE_URL (or the test one), else the embedded server."""
    configured = os.environ.get("WALLETQL_BENCH_DATABASE_URL") or os.environ.get(
        "WALLETQL_TEST_DATABASE_URL"
    )
    if configured:
        yield configured.replace("postgresql+asyncpg://", "postgresql://")
        return
    from walletql.embedded_pg import EmbeddedPostgres

    DATA.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(DATA, database="postgres")
    server.start()
    try:
        yield server.url.replace("postgresql+asyncpg://", "postgresql://")
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def fresh_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new, migrated database; dropped afterwards. Yields its SQLAlchemy URL."""
    from walletql.migrate import upgrade

    name = f"walletql_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class ServerProcess:
    """``walletql serve`` (or ``worker``) in its own process, on a free port."""

    env: dict[str, str]
    args: Sequence[str] = ("serve",)
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServerProcess:
        env = {**self.env, "WALLETQL_PORT": str(self.port)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "walletql.cli", *self.args, env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if self.args[0] == "serve":
            await wait_http(f"{self.url}/healthz", self.proc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), timeout=30)


async def wait_http(url: str, proc: asyncio.subprocess.Process | None = None) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


def base_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a walletql process for a benchmark (no inherited WALLETQL_*)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")}
    env.update(
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_DATA_DIR=str(data_dir),
        WALLETQL_LOG_LEVEL="WARNING",
        # Every simulated client connects from 127.0.0.1 (10,000 sockets in bench/fanout.py).
        WALLETQL_MAX_CONNECTIONS_PER_IP="0",
        **extra,
    )
    return env


def chains_json(chain_id: int, rpc_url: str, **extra: Any) -> str:
    return json.dumps([{"chain_id": chain_id, "name": "bench", "rpc_url": rpc_url, **extra}])


def now() -> float:
    return time.perf_counter()
