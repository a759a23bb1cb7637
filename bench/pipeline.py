"""Pipeline throughput: submitTransaction → CONFIRMED, per second, on anvil with automine.

walletql runs as real processes: one ``walletql serve --no-worker`` API and 1 or 4
``walletql worker`` processes on the PostgreSQL queue. Every user submits its share of the
transactions at once over GraphQL (at most ``--in-flight`` requests open); the clock runs from
the first submit to the moment the database counts every transaction CONFIRMED (polled every
25 ms). Each worker is warmed up first with one message of its own (the others paused), since
it imports web3 lazily on its first message. Also measured: the submit rate alone (workers
paused with SIGSTOP), and how fast 1 or 4 warm workers drain that backlog once resumed. The
baseline, in the same run and against the same anvil, is web3.py alone: as many funded
accounts, signing locally with eth_account, sending each account's transactions concurrently
with local nonces, and waiting for every receipt; once more with the signing done before the
clock starts (the node's own limit). CPU seconds per process (from /proc) show where the time
goes, and how much other programs on the machine took meanwhile.

    uv run --no-sync python -m bench.pipeline [--n 200] [--users 20] [--in-flight 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3

from bench.measure import (
    BENCH_ENV,
    DATA,
    bench_postgres,
    connected_to,
    machine,
    machine_cpu,
    now,
    print_table,
    process_cpu,
    summary,
)
from testkit import graphql
from testkit.anvil import Anvil
from testkit.env import PIPELINE_CHAIN, chain_of, walletql_env
from testkit.pipeline import CREATE_USER, RECIPIENT, fund
from testkit.postgres import asyncpg_dsn, fresh_database
from testkit.process import ServerProcess
from walletql.devauth import DevSigner

CHAIN_ID = 31337
PASSWORD = "correct horse battery staple"  # noqa: S105 (the bench users' password)
VALUE = 1000
FUNDING_WEI = 10 * 10**18
POLL_SECONDS = 0.025
PIPELINE_SETTINGS = {
    "WALLETQL_WORKER_CHECK_INTERVAL_SECONDS": "0.2",
    "WALLETQL_QUEUE_WAIT_SECONDS": "0.5",
    "WALLETQL_WORKER_CONCURRENCY": "8",
}
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }"


# -- CPU accounting (Linux /proc) --------------------------------------------------------------


@dataclass
class CpuMeter:
    """CPU seconds used by named groups of processes between ``start()`` and ``stop()``.

    With ``conn``, the group "postgres" is the backends of that connection's database (found
    again at each sample: a backend that started in between counts from zero, one that exited
    is lost). "other" is whatever else kept the machine busy: the OS, and any other program
    running on this machine at the same time."""

    groups: dict[str, list[int | None]]
    conn: asyncpg.Connection | None = None
    used: dict[str, float] = field(default_factory=dict)
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: float = 0.0

    async def _pids(self) -> dict[str, list[int]]:
        pids = {name: [p for p in group if p is not None] for name, group in self.groups.items()}
        if self.conn is not None:
            rows = await self.conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
            pids["postgres"] = [int(row["pid"]) for row in rows]
        return pids

    async def start(self) -> None:
        self._before = {
            name: {pid: process_cpu(pid) for pid in group}
            for name, group in (await self._pids()).items()
        }
        self._machine = machine_cpu()[0]

    async def stop(self) -> None:
        self.used = {
            name: sum(process_cpu(pid) - self._before.get(name, {}).get(pid, 0.0) for pid in group)
            for name, group in (await self._pids()).items()
        }
        self.used["machine"] = machine_cpu()[0] - self._machine
        self.used["other"] = max(
            0.0, self.used["machine"] - sum(v for k, v in self.used.items() if k != "machine")
        )


# -- one measured mode -------------------------------------------------------------------------


@dataclass
class Run:
    """One measured mode: the submit window and the time to the last CONFIRMED."""

    mode: str
    tx: int
    submit_seconds: float = float("nan")
    submit_latencies: list[float] = field(default_factory=list)
    total_seconds: float = float("nan")
    started: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def target(self) -> int:
        """How many should end CONFIRMED: the submits that succeeded."""
        return self.tx - len(self.errors)

    @property
    def complete(self) -> bool:
        return not self.errors and self.statuses.get("CONFIRMED", 0) == self.tx

    def label(self, *, submit_only: bool = False) -> str:
        if self.errors:
            return f"{self.mode} ({len(self.errors)} submits failed, e.g. {self.errors[0][:80]})"
        if submit_only or self.complete:
            return self.mode
        return f"{self.mode} (INCOMPLETE: {self.statuses})"


def shares(n: int, users: int) -> list[int]:
    """``n`` transactions over ``users`` accounts, as evenly as possible."""
    return [n // users + (1 if i < n % users else 0) for i in range(users)]


# -- baseline: web3.py straight to the node ----------------------------------------------------


async def run_baseline(anvil: Anvil, n: int, users: int, *, presign: bool = False) -> Run:
    """web3.py alone: ``users`` fresh funded accounts, each sending its share concurrently
    with local nonces, then waiting for every receipt. With ``presign`` the signing happens
    before the clock starts (what is left is the node and JSON-RPC)."""
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
    accounts = [Account.create() for _ in range(users)]
    for account in accounts:
        await fund(w3, account.address, FUNDING_WEI)
    block = await w3.eth.get_block("latest")
    tip = await w3.eth.max_priority_fee
    max_fee = 2 * int(block.get("baseFeePerGas", 0)) + tip

    def sign(account: Any, count: int) -> list[bytes]:
        return [
            Account.sign_transaction(
                {
                    "chainId": CHAIN_ID, "nonce": nonce, "to": RECIPIENT, "value": VALUE,
                    "gas": 21_000, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip,
                },
                account.key,
            ).raw_transaction
            for nonce in range(count)
        ]  # fmt: skip

    counts = shares(n, users)
    presigned = [sign(a, c) for a, c in zip(accounts, counts, strict=True)] if presign else []
    sent_at: list[float] = []

    async def one_account(index: int) -> None:
        raw = presigned[index] if presign else sign(accounts[index], counts[index])
        hashes = await asyncio.gather(*(w3.eth.send_raw_transaction(r) for r in raw))
        sent_at.append(now())
        receipts = await asyncio.gather(
            *(
                w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.02)
                for h in hashes
            )
        )
        if any(r["status"] != 1 for r in receipts):
            raise RuntimeError("a baseline transaction reverted")

    run = Run(
        "web3.py → anvil, pre-signed (node only)" if presign else "web3.py → anvil (baseline)", n
    )
    meter = CpuMeter({"bench client": [os.getpid()], "anvil": [anvil.pid]})
    await meter.start()
    run.started = now()
    await asyncio.gather(*(one_account(i) for i in range(users)))
    run.total_seconds = now() - run.started
    await meter.stop()
    run.cpu = meter.used
    run.submit_seconds = max(sent_at) - run.started
    run.statuses = {"CONFIRMED": n}
    await w3.provider.disconnect()
    return run


# -- walletql ----------------------------------------------------------------------------------


async def wait_workers_ready(workers: Sequence[ServerProcess], db_port: int) -> None:
    """Wait until every worker has connected to PostgreSQL: its receive loop is running (the
    engine connects lazily, after every start-up import; web3 is still imported lazily, on
    each worker's first message)."""
    for _ in range(1200):
        for worker in workers:
            assert worker.proc is not None
            if worker.proc.returncode is not None:
                raise RuntimeError(f"a worker exited with {worker.proc.returncode}")
        if all(w.proc and connected_to(w.proc.pid, db_port) for w in workers):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the workers never connected to PostgreSQL")


async def graphql_data(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    return await graphql.data(client, "/graphql", query, variables, token=token)


async def status_counts(conn: asyncpg.Connection, excluded: str) -> dict[str, int]:
    """Transactions by status, leaving out those sent from ``excluded`` (the warm-up wallet)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM transactions WHERE lower(from_address) <> lower($1) "
        "GROUP BY status",
        excluded,
    )
    return {row["status"]: int(row["n"]) for row in rows}


@dataclass
class Setup:
    """A fresh database with funded walletql users, an API process, a client, a connection."""

    url: str
    env: dict[str, str]
    api: ServerProcess
    anvil: Anvil
    client: httpx.AsyncClient
    conn: asyncpg.Connection
    tokens: list[str]
    warmup_token: str
    warmup_address: str
    workers: list[ServerProcess] = field(default_factory=list)

    def meter(self) -> CpuMeter:
        return CpuMeter(
            {
                "api": [self.api.proc.pid if self.api.proc else None],
                "workers": [w.proc.pid if w.proc else None for w in self.workers],
                "anvil": [self.anvil.pid],
                "bench client": [os.getpid()],
            },
            self.conn,
        )

    async def start_workers(self, count: int, stack: contextlib.AsyncExitStack) -> None:
        """Start ``count`` workers and warm each one up with a message of its own: web3 is
        imported lazily, on a worker's first message, and that belongs to start-up."""
        for _ in range(count):
            self.workers.append(
                await stack.enter_async_context(ServerProcess(self.env, ("worker",)))
            )
        stack.callback(self.signal_workers, signal.SIGCONT)  # never leave one paused
        await wait_workers_ready(self.workers, urlsplit(self.url).port or 5432)
        for worker in self.workers:
            others = [w for w in self.workers if w is not worker]
            self.signal_workers(signal.SIGSTOP, others)
            try:
                data = await graphql_data(
                    self.client, self.warmup_token, SUBMIT,
                    {"i": {"to": RECIPIENT, "value": str(VALUE), "password": PASSWORD}},
                )  # fmt: skip
                await self.wait_status(data["submitTransaction"]["id"], "CONFIRMED")
            finally:
                self.signal_workers(signal.SIGCONT, others)

    def signal_workers(self, signum: int, workers: Sequence[ServerProcess] | None = None) -> None:
        """SIGSTOP pauses the workers (by PID), SIGCONT resumes them."""
        for worker in self.workers if workers is None else workers:
            if worker.proc is not None and worker.proc.returncode is None:
                os.kill(worker.proc.pid, signum)

    async def wait_status(self, tx_id: str, status: str, limit_seconds: float = 60) -> None:
        for _ in range(int(limit_seconds / POLL_SECONDS)):
            query = "SELECT status FROM transactions WHERE id = $1"
            if await self.conn.fetchval(query, tx_id) == status:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"warm-up transaction {tx_id} never became {status}")


@contextlib.asynccontextmanager
async def walletql_setup(admin_dsn: str, anvil: Anvil, users: int) -> AsyncIterator[Setup]:
    DATA.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="pipeline-", dir=DATA))
    try:
        async with fresh_database(admin_dsn, "walletql_bench") as url:
            env = walletql_env(
                url, data_dir, **BENCH_ENV,
                WALLETQL_CHAINS=json.dumps([chain_of(anvil, **PIPELINE_CHAIN)]),
                WALLETQL_PEPPER=secrets.token_hex(32),
                **PIPELINE_SETTINGS,
            )  # fmt: skip
            signer = DevSigner(data_dir)
            tokens = [signer.mint(f"bench-user-{i}", ttl=3600) for i in range(users + 1)]
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            conn = await asyncpg.connect(asyncpg_dsn(url))
            try:
                async with (
                    ServerProcess(env, ("serve", "--no-worker")) as api,
                    httpx.AsyncClient(base_url=api.url, timeout=180, limits=limits) as client,
                ):
                    created = await asyncio.gather(
                        *(graphql_data(client, t, CREATE_USER, {"p": PASSWORD}) for t in tokens)
                    )
                    w3 = AsyncWeb3(AsyncHTTPProvider(anvil.url))
                    for data in created:
                        await fund(w3, data["createUser"]["wallet"]["address"], FUNDING_WEI)
                    await w3.provider.disconnect()
                    warmup_address = created[-1]["createUser"]["wallet"]["address"]
                    yield Setup(
                        url, env, api, anvil, client, conn, tokens[:-1], tokens[-1], warmup_address
                    )
            finally:
                await conn.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def submit_all(setup: Setup, n: int, run: Run, in_flight: int) -> None:
    """Every user's share at once, at most ``in_flight`` requests open; the clock of ``run``
    starts at the first submit. A failed submit is recorded, not raised."""
    slots = asyncio.Semaphore(in_flight)

    async def one(token: str) -> None:
        async with slots:
            sent = now()
            try:
                await graphql_data(
                    setup.client,
                    token,
                    SUBMIT,
                    {"i": {"to": RECIPIENT, "value": str(VALUE), "password": PASSWORD}},
                )
            except (RuntimeError, httpx.HTTPError) as exc:
                run.errors.append(str(exc))
            else:
                run.submit_latencies.append(now() - sent)

    jobs = [
        one(token)
        for token, count in zip(setup.tokens, shares(n, len(setup.tokens)), strict=True)
        for _ in range(count)
    ]
    run.started = now()
    await asyncio.gather(*jobs)
    run.submit_seconds = now() - run.started


async def wait_confirmed(setup: Setup, limit_seconds: float, run: Run) -> None:
    """Poll the database until every submitted transaction of ``run`` is CONFIRMED (or
    ``limit_seconds`` pass)."""
    for _ in range(int(limit_seconds / POLL_SECONDS) + 1):
        run.statuses = await status_counts(setup.conn, setup.warmup_address)
        submitted = run.submit_seconds == run.submit_seconds  # not NaN: every submit answered
        if submitted and run.statuses.get("CONFIRMED", 0) >= run.target:
            run.total_seconds = now() - run.started
            return
        await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Plan:
    admin_dsn: str
    anvil: Anvil
    n: int
    users: int
    in_flight: int
    limit_seconds: float


async def run_pipeline(plan: Plan, workers: int) -> Run:
    """Submit with ``workers`` warm worker processes running; time submit → CONFIRMED."""
    run = Run(f"walletql, {workers} worker{'s' if workers > 1 else ''}", plan.n)
    async with (
        walletql_setup(plan.admin_dsn, plan.anvil, plan.users) as setup,
        contextlib.AsyncExitStack() as stack,
    ):
        await setup.start_workers(workers, stack)
        meter = setup.meter()
        await meter.start()
        run.started = now()  # submit_all sets it again, a moment later
        watcher = asyncio.create_task(wait_confirmed(setup, plan.limit_seconds, run))
        try:
            await submit_all(setup, plan.n, run, plan.in_flight)
            await watcher
        finally:
            watcher.cancel()
        await meter.stop()
        run.cpu = meter.used
    return run


async def run_submit_then_drain(plan: Plan, workers: int) -> tuple[Run, Run]:
    """Submit while ``workers`` warm workers are paused (SIGSTOP): the API alone; then resume
    them (SIGCONT) and time how long they take to confirm that backlog."""
    plural = "s" if workers > 1 else ""
    submit = Run(f"submit alone ({workers} worker{plural} paused)", plan.n)
    drain = Run(f"drain a queued backlog, {workers} worker{plural}", plan.n)
    async with (
        walletql_setup(plan.admin_dsn, plan.anvil, plan.users) as setup,
        contextlib.AsyncExitStack() as stack,
    ):
        await setup.start_workers(workers, stack)
        setup.signal_workers(signal.SIGSTOP)
        try:
            meter = setup.meter()
            await meter.start()
            await submit_all(setup, plan.n, submit, plan.in_flight)
            await meter.stop()
            submit.cpu = meter.used
            submit.statuses = await status_counts(setup.conn, setup.warmup_address)
            meter = setup.meter()
            await meter.start()
            drain.started, drain.submit_seconds, drain.errors = now(), 0.0, submit.errors
        finally:
            setup.signal_workers(signal.SIGCONT)
        await wait_confirmed(setup, plan.limit_seconds, drain)
        await meter.stop()
        drain.cpu = meter.used
    return submit, drain


# -- report ------------------------------------------------------------------------------------


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds == seconds and seconds > 0 else float("nan")


def report(
    baselines: Sequence[Run], runs: Sequence[Run], submits: Sequence[Run], drains: Sequence[Run]
) -> None:
    base_rate = rate(baselines[0].tx, baselines[0].total_seconds)
    rows = []
    for run in [*baselines, *runs, *drains]:
        tx_s = rate(run.target, run.total_seconds)
        tail = run.total_seconds - run.submit_seconds if any(run is r for r in runs) else "-"
        rows.append(
            [run.label(), run.target, run.total_seconds, tx_s, f"{tx_s / base_rate:.3f}x", tail]
        )
    print_table(
        "Pipeline throughput: first submit → last CONFIRMED (anvil automine, 1 confirmation)",
        ["mode", "tx", "seconds", "tx/s", "ratio to baseline", "last submit → last CONFIRMED s"],
        rows,
    )
    base_submit = rate(baselines[0].tx, baselines[0].submit_seconds)
    rows = []
    for run in [*baselines, *submits, *runs]:
        tx_s = rate(run.target, run.submit_seconds)
        lat = summary(run.submit_latencies)
        p50, p99 = (lat["p50"] * 1000, lat["p99"] * 1000) if run.submit_latencies else ("-", "-")
        rows.append(
            [run.label(submit_only=True), run.target, run.submit_seconds, tx_s,
             f"{tx_s / base_submit:.3f}x", p50, p99]
        )  # fmt: skip
    print_table(
        "Submit rate: first submit → last answer (walletql: submitTransaction over GraphQL; "
        "web3.py: eth_sendRawTransaction)",
        ["mode", "tx", "seconds", "tx/s", "ratio to baseline", "p50 ms", "p99 ms"],
        rows,
    )
    rows = []
    for run in [*baselines, *submits, *runs, *drains]:
        wall = run.submit_seconds if any(run is s for s in submits) else run.total_seconds
        cpu = run.cpu
        columns = ["api", "workers", "postgres", "anvil", "bench client", "other"]
        busy = cpu["machine"] / wall / (os.cpu_count() or 1)
        per_tx = [cpu[c] / run.target * 1000 if cpu.get(c) else "-" for c in ("api", "workers")]
        rows.append([run.mode, wall, *(cpu.get(c, "-") for c in columns), f"{busy:.0%}", *per_tx])
    print_table(
        "CPU seconds used during each measurement (postgres = this database's backends; other = "
        "the OS and anything else running on the machine meanwhile)",
        ["mode", "wall s", "API", "workers", "postgres", "anvil", "bench client", "other",
         "machine busy", "API ms/tx", "workers ms/tx"],
        rows,
    )  # fmt: skip


async def main(n: int, users: int, limit_seconds: float, in_flight: int) -> None:
    print(f"# Pipeline throughput — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"\n{machine()}; load average at start {load}; {n} transactions from {users} accounts "
        f"per mode; at most {in_flight} submits in flight; worker settings {PIPELINE_SETTINGS}"
    )
    with bench_postgres() as admin_dsn:
        async with Anvil(chain_id=CHAIN_ID) as anvil:
            plan = Plan(admin_dsn, anvil, n, users, in_flight, limit_seconds)
            baselines = [
                await run_baseline(anvil, n, users),
                await run_baseline(anvil, n, users, presign=True),
            ]
            runs = [await run_pipeline(plan, workers) for workers in (1, 4)]
            backlog = [await run_submit_then_drain(plan, workers) for workers in (1, 4)]
    report(baselines, runs, [s for s, _ in backlog], [d for _, d in backlog])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=200, help="transactions per mode (200)")
    parser.add_argument("--users", type=int, default=20, help="users / accounts (20)")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=32,
        help="submit requests open at once (32); far more than the API answers within 30 s "
        "runs into its connection-pool timeout",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for CONFIRMED per mode (120)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or not 1 <= args.users <= args.n or args.in_flight < 1:
        parser.error("need n >= 1, 1 <= users <= n and in-flight >= 1")
    return args


if __name__ == "__main__":
    options = parse_args()
    asyncio.run(main(options.n, options.users, options.timeout, options.in_flight))
