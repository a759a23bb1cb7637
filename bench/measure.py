"""What the benchmarks measure with, and the table every script prints. Each script compares
against a baseline measured in the same run; trust the ratios, not the absolute times (these
machines are noisy). Databases, processes, anvil and clients come from testkit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from testkit import ROOT
from testkit.postgres import fresh_database, postgres_server

DATA = ROOT / ".data" / "bench"
# What every benchmark's walletql process gets: warnings only in its log, and no cap on
# connections per IP (every simulated client connects from 127.0.0.1: 10,000 sockets in
# bench/fanout.py).
BENCH_ENV = {"WALLETQL_LOG_LEVEL": "WARNING", "WALLETQL_MAX_CONNECTIONS_PER_IP": "0"}


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


def bench_postgres() -> contextlib.AbstractContextManager[str]:
    """An admin DSN: WALLETQL_BENCH_DATABASE_URL (or the test one), else an embedded server
    under .data/bench."""
    return postgres_server(
        "WALLETQL_BENCH_DATABASE_URL", "WALLETQL_TEST_DATABASE_URL", data_dir=DATA
    )


@contextlib.asynccontextmanager
async def bench_database(name: str) -> AsyncIterator[tuple[str, Path]]:
    """(SQLAlchemy URL, data dir): a fresh migrated database on ``bench_postgres`` and an empty
    data dir under .data/bench, both removed at the end."""
    data_dir = DATA / f"{name}-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir(parents=True)
    try:
        with bench_postgres() as admin_dsn:
            async with fresh_database(admin_dsn, "walletql_bench") as url:
                yield url, data_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone, or without /proc)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over cores."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0.0, 1.0
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def connected_to(pid: int, port: int) -> bool:
    """True once process ``pid`` holds an established TCP connection to ``port`` (Linux)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                remote_port = int(cols[2].rsplit(":", 1)[1], 16)
                if remote_port == port and cols[3] == "01" and cols[9] in inodes:
                    return True
    return False


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


@contextlib.asynccontextmanager
async def notifications(
    dsn: str, on_event: Callable[[dict[str, Any], float], None], *channels: str
) -> AsyncIterator[None]:
    """Our own LISTEN on walletql's events channel (and any other ``channels``):
    ``on_event(event, arrival time)`` for each notification (it arrives about when the event
    was committed)."""
    import asyncpg

    from services.events import CHANNEL

    connection = await asyncpg.connect(dsn)

    def on_notify(_c: object, _pid: int, _channel: str, payload: str) -> None:
        received = time.time()
        on_event(json.loads(payload), received)

    for channel in (CHANNEL, *channels):
        await connection.add_listener(channel, on_notify)
    try:
        yield
    finally:
        await connection.close()


def run_script(doc: str | None, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A benchmark without options: ``--help`` shows its docstring, anything else runs it
    (`python -m bench` passes its own arguments on to every script)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_known_args()
    asyncio.run(main())


def now() -> float:
    return time.perf_counter()
