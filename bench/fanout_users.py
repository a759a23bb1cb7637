"""Many users: N sockets of N distinct users, each subscribed to ``myTransactions``, while
events for random users arrive at ``--rate`` per second for ``--seconds``; on 1 and on 3 API
processes (the sockets spread over them round-robin).

The users are rows made here (``createUser``'s KDF would take minutes for 10,000), each with
a dev token. The events are the worker's notifications, sent from here at the given rate on
walletql's channel with the payload ``record_event`` commits (a random user, its next
``userSeq``, ``at`` = the moment before the NOTIFY); no event rows are written, and none
are read: an in-order event is delivered from its notification. Reported: deliveries, p50
and p99 from the NOTIFY to the client, the API processes' CPU share over the window, and
deliveries per second per core of their CPU. Every event must reach its user's socket,
whichever process holds it.

    python -m bench.fanout_users [--users 10000] [--rate 500] [--seconds 10] [--processes 1,3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from testkit.ws import GraphQLWS

MINE = "subscription { myTransactions { userSeq status at } }"
IN_FLIGHT = 8


# -- client mode ------------------------------------------------------------------------------


async def client_main() -> None:
    """stdin: a JSON config line; stdout: {"ready"} once every socket has subscribed, then on
    a "close" line {"latencies"} (ms from each event's ``at`` to its receipt)."""
    from bench.fanout import raise_nofile

    raise_nofile()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**26)  # the config line holds thousands of tokens
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    config = json.loads(await stdin.readline())
    urls: list[str] = config["urls"]
    latencies: list[float] = []
    errors: list[str] = []
    slots = asyncio.Semaphore(IN_FLIGHT)
    sockets: list[GraphQLWS] = []

    async def subscriber(index: int, token: str) -> None:
        ws = GraphQLWS(urls[index % len(urls)], token, ping_interval=None, open_timeout=None)
        try:
            async with slots:
                await ws.open()
                await ws.init(timeout=None)
                await ws.subscribe("1", MINE)
                sockets.append(ws)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return

    await asyncio.gather(*(subscriber(i, t) for i, t in config["tokens"]))

    async def receive(ws: GraphQLWS) -> None:
        assert ws.ws is not None
        with contextlib.suppress(Exception):
            async for raw in ws.ws:
                received = time.time()
                message = json.loads(raw)
                if message.get("type") == "next":
                    event = message["payload"]["data"]["myTransactions"]
                    at = dt.datetime.fromisoformat(event["at"]).timestamp()
                    latencies.append((received - at) * 1000)

    readers = [asyncio.create_task(receive(ws)) for ws in sockets]
    print(json.dumps({"ready": len(sockets), "errors": errors[:3]}), flush=True)
    await stdin.readline()  # "close"
    print(json.dumps({"latencies": latencies}), flush=True)
    for task in readers:
        task.cancel()
    await asyncio.wait([asyncio.create_task(ws.close()) for ws in sockets], timeout=30)


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Run:
    processes: int
    users: int
    connected: int
    sent: int
    latencies: list[float]
    cpu: float  # API processes' CPU seconds over the window
    window: float
    load: str


@contextlib.asynccontextmanager
async def client_processes(
    tokens: Sequence[str], urls: Sequence[str], n: int
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    from testkit import ROOT

    procs = []
    try:
        for k in range(n):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.fanout_users", "--client", cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=2**26,
            )  # fmt: skip
            share = [(i, t) for i, t in enumerate(tokens) if i % n == k]
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"urls": list(urls), "tokens": share}).encode() + b"\n")
            await proc.stdin.drain()
            procs.append(proc)
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()  # by its own PID
                await proc.wait()


async def line(proc: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), within)
    if not raw:
        raise RuntimeError(f"client {proc.pid} exited with {await proc.wait()}")
    answer: dict[str, Any] = json.loads(raw)
    return answer


async def subscriptions_active(urls: Sequence[str]) -> int:
    import httpx

    total = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:
            text = (
                await http.get(url.replace("ws://", "http://").replace("/graphql", "/metrics"))
            ).text
            for row in text.splitlines():
                if row.startswith("walletql_subscriptions_active "):
                    total += int(float(row.split()[1]))
    return total


async def one_run(
    processes: int, users: list[tuple[uuid.UUID, str]], *, env: dict[str, str], dsn: str,
    rate: int, seconds: float, clients: int,
) -> Run:  # fmt: skip
    import asyncpg

    from bench.measure import load_average, process_cpu
    from services.events import CHANNEL
    from testkit.process import ServerProcess

    async with contextlib.AsyncExitStack() as stack:
        apis = [
            await stack.enter_async_context(
                ServerProcess(env, ("serve", "--no-worker"), strict=False)
            )
            for _ in range(processes)
        ]
        urls = [api.ws_url for api in apis]
        tokens = [token for _, token in users]
        procs = await stack.enter_async_context(client_processes(tokens, urls, clients))
        answers = [await line(p, 600) for p in procs]
        connected = sum(a["ready"] for a in answers)
        for _ in range(600):
            if await subscriptions_active(urls) >= connected:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        connection = await asyncpg.connect(dsn)
        useq = dict.fromkeys((uid for uid, _ in users), 0)
        ids = [uid for uid, _ in users]
        total = int(rate * seconds)
        load = load_average()
        cpu_before = sum(process_cpu(api.pid) for api in apis)
        started = time.perf_counter()
        for k in range(total):
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            user = random.choice(ids)  # noqa: S311 - a load pattern, not a secret
            useq[user] += 1
            payload = {
                "tx": str(uuid.uuid4()), "user": str(user), "seq": 1, "useq": useq[user],
                "status": "SUBMITTED", "reason": None, "at": dt.datetime.now(dt.UTC).isoformat(),
            }  # fmt: skip
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload))
        window = time.perf_counter() - started  # the CPU share is over the sending window
        await asyncio.sleep(2.0)  # the last deliveries (their CPU counts too: conservative)
        cpu = sum(process_cpu(api.pid) for api in apis) - cpu_before
        await connection.close()
        latencies: list[float] = []
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"close\n")
            await proc.stdin.drain()
            latencies += (await line(proc, 120))["latencies"]
        return Run(processes, len(users), connected, total, latencies, cpu, window, load)


async def run(
    users: int, rate: int, seconds: float, processes: Sequence[int], clients: int
) -> None:
    import asyncpg

    from bench.fanout import raise_nofile
    from bench.measure import BENCH_ENV, bench_database, machine, percentile, print_table
    from testkit.anvil import Anvil
    from testkit.env import chain_of, walletql_env
    from testkit.postgres import asyncpg_dsn
    from walletql.devauth import DevSigner

    print(machine())
    print(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    raise_nofile()
    runs: list[Run] = []
    async with (
        bench_database("fanout-users") as (url, data_dir),
        Anvil(chain_id=31337, no_mining=True) as anvil,
    ):
        dsn = asyncpg_dsn(url)
        signer = DevSigner(data_dir)
        chains = json.dumps([chain_of(anvil)])
        env = walletql_env(url, data_dir, **BENCH_ENV, WALLETQL_CHAINS=chains)
        connection = await asyncpg.connect(dsn)
        rows = await connection.fetch(
            "INSERT INTO users (id, sub) SELECT gen_random_uuid(), 'bench-u-' || i "
            "FROM generate_series(1, $1) AS i RETURNING id, sub",
            users,
        )
        await connection.close()
        accounts = [(row["id"], signer.mint(row["sub"], ttl=3600)) for row in rows]
        for count in processes:
            runs.append(
                await one_run(count, accounts, env=env, dsn=dsn, rate=rate, seconds=seconds,
                              clients=clients)
            )  # fmt: skip
            r = runs[-1]
            print(
                f"{count} API process(es): {r.connected:,} subscribed, {len(r.latencies):,} "
                f"of {r.sent:,} events delivered (load average {r.load})",
                flush=True,
            )
    rows_out = []
    for r in runs:
        per_core = len(r.latencies) / r.cpu if r.cpu > 0 else float("nan")
        rows_out.append(
            [r.processes, f"{r.connected:,}", f"{r.sent:,}", f"{len(r.latencies):,}",
             percentile(r.latencies, 50), percentile(r.latencies, 99), max(r.latencies, default=0),
             f"{r.cpu / r.window:.0%}", per_core, r.load]
        )  # fmt: skip
    print_table(
        f"{users:,} users, one socket each subscribed to myTransactions; events for random "
        f"users at {rate}/s for {seconds:.0f} s",
        ["API processes", "sockets", "events", "delivered", "p50 ms NOTIFY->client",
         "p99 ms", "max ms", "API CPU share (of one core)", "deliveries/s per core",
         "load average"],
        rows_out,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", default="1,3")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main())
        return
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    asyncio.run(run(args.users, args.rate, args.seconds, counts, max(1, args.clients)))


if __name__ == "__main__":
    main()
