"""Fan-out: one status change of one transaction, pushed to N concurrent subscribers of it.

One ``walletql serve --no-worker`` process on anvil, one user. For each N (1 as the
baseline, then ``--sizes``): submit a transaction (it stays QUEUED: no worker runs), open N
graphql-transport-ws subscribers to ``transactionStatus(id: X)`` from a few client processes
(this script's ``--client`` mode, ``websockets`` package), wait until every one has the
initial message (the current state, QUEUED), read the server's RSS, then start ONE
``walletql worker``: it broadcasts the transaction and commits SUBMITTED. The figure is the
time from that event's ``at`` to the moment the LAST subscriber has it (client wall clocks,
same machine). Also shown: the same from our own LISTEN's receipt of the NOTIFY (~ the
commit), and the server's RSS growth per idle subscription (VmRSS before connecting and 2 s
after the last subscriber is initialised; a garbage collection cannot be forced in the
server from outside, and its start-up objects are frozen out of the GC by the app).

Subscribers are connected a few at a time (``--in-flight``); a round that has not connected
all N within ``--connect-budget`` seconds goes on with those it has, and says so.

anvil runs with ``--no-mining`` by default so that SUBMITTED is the only event: with
automine the worker commits SUBMITTED and MINED in one database transaction and every
subscriber gets two messages at once (``--automine`` measures that).

    python -m bench.fanout [--sizes 1000,10000] [--clients 4] [--no-deflate] [--automine]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testkit.ws import GraphQLWS

if TYPE_CHECKING:
    import httpx

    from testkit.process import ServerProcess

# The client processes import only the above (a fraction of a second to start); the
# benchmark's own imports (walletql, web3, asyncpg, ...) are made in the parent only.

SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }"
SUBSCRIBE = "subscription($id: ID!) { transactionStatus(id: $id) { seq status at } }"
CONNECT_BUDGET = 140.0  # default seconds per round for connecting and initialising N sockets
EVENT_TIMEOUT = 60.0  # the worker's event reached every subscriber
IN_FLIGHT = 8  # subscribers being connected at once, over all client processes (below the
# API's pool of 10 database connections: beyond it, overflow connections are opened and
# closed for every checkout, and subscribing gets ~1.6x slower)


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- client mode: one process holding a share of the subscribers ------------------------------


async def client_main() -> None:
    """Read a JSON config line on stdin; print {"ready"} once every socket has its initial
    message (or at the deadline: the sockets not ready by then are closed and left out),
    {"done"} with the receipt times of the next message; close all on a "close" line."""
    raise_nofile()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    config = json.loads(await stdin.readline())
    count: int = config["count"]
    sockets: dict[int, GraphQLWS] = {}
    ready: set[int] = set()
    ready_at: list[float] = []
    received: list[float] = []
    events: list[dict[str, Any]] = []
    errors: list[str] = []  # while connecting
    lost: list[str] = []  # after the initial message
    all_ready = asyncio.Event()
    slots = asyncio.Semaphore(config["in_flight"])

    def settled() -> None:
        if len(ready) + len(errors) == count:
            all_ready.set()

    async def subscriber(index: int) -> None:
        try:
            async with slots:
                ws = sockets[index] = GraphQLWS(
                    config["url"],
                    config["token"],
                    compression="deflate" if config["deflate"] else None,
                    ping_interval=None,
                    open_timeout=None,
                    max_queue=4,
                )
                await ws.open()
                await ws.init(timeout=None)
                await ws.subscribe("1", SUBSCRIBE, {"id": config["tx"]})
                first = await ws.receive(timeout=None)
                if first["type"] != "next":
                    raise RuntimeError(f"no initial state: {first}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            settled()
            return
        ready.add(index)
        ready_at.append(time.time())
        settled()
        try:
            message = await ws.receive(timeout=None)
        except Exception as exc:
            lost.append(f"after the initial message: {type(exc).__name__}: {exc}"[:300])
            return
        received.append(time.time())
        events.append(message)

    started = time.time()
    tasks = [asyncio.create_task(subscriber(i)) for i in range(count)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), max(0.0, config["deadline"] - started))
    finished = time.time()
    late = [i for i in range(count) if i not in ready]
    for i in late:
        tasks[i].cancel()
    if late:  # out of time: these are not part of the measurement
        await asyncio.wait([tasks[i] for i in late])
        closing = [asyncio.create_task(sockets[i].close()) for i in late if i in sockets]
        if closing:
            await asyncio.wait(closing, timeout=30)
    print(
        json.dumps({"ready": len(ready), "errors": errors[:3], "started": started,
                    "finished": finished, "ready_at": ready_at}),
        flush=True,
    )  # fmt: skip
    await asyncio.wait(tasks, timeout=EVENT_TIMEOUT)
    pushed = [e["payload"]["data"]["transactionStatus"] for e in events if e["type"] == "next"]
    done = {
        "done": len(received),
        "received": received,
        "statuses": sorted({event["status"] for event in pushed}),
        "event": pushed[0] if pushed else None,
        "errors": lost[:3],
    }
    print(json.dumps(done), flush=True)
    await stdin.readline()  # "close" (or EOF: the parent is gone)
    for task in tasks:
        task.cancel()
    if sockets:
        closing = [asyncio.create_task(sockets[i].close()) for i in ready if i in sockets]
        if closing:
            await asyncio.wait(closing, timeout=30)


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Round:
    size: int
    connected: int = 0
    connect_seconds: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    received: list[float] = field(default_factory=list)
    at: float = float("nan")
    notified: float = float("nan")
    cpu: float = float("nan")  # the server's CPU seconds from the NOTIFY to the last receipt
    statuses: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    ready_at: list[float] = field(default_factory=list)

    def connect_rates(self) -> tuple[float, float]:
        """Subscribers connected per second over the first and the last fifth of them."""
        times = sorted(self.ready_at)
        fifth = len(times) // 5
        if fifth < 2:
            return float("nan"), float("nan")
        first = fifth / max(times[fifth - 1] - times[0], 1e-9)
        last = fifth / max(times[-1] - times[-fifth], 1e-9)
        return first, last


@dataclass
class Client:
    """One ``--client`` subprocess, spoken to over its stdin and stdout (JSON lines)."""

    proc: asyncio.subprocess.Process

    async def line(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not raw:
            raise RuntimeError(f"client {self.proc.pid} exited with {await self.proc.wait()}")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    async def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(text.encode() + b"\n")
            await self.proc.stdin.drain()

    async def stop(self) -> None:
        await self.say("close")
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()  # by its own PID
            await self.proc.wait()


@contextlib.asynccontextmanager
async def clients(counts: Sequence[int], config: dict[str, Any]) -> AsyncIterator[list[Client]]:
    from testkit import ROOT

    started: list[Client] = []
    try:
        for count in counts:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.fanout", "--client", cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            started.append(Client(proc))
            await started[-1].say(json.dumps({**config, "count": count}))
        yield started
    finally:
        await asyncio.gather(*(client.stop() for client in started))


async def fan_out(
    size: int, n_clients: int, *, env: dict[str, str], api: ServerProcess, token: str,
    tx_id: str, deflate: bool, budget: float, in_flight: int,
    arrivals: dict[tuple[str, int], tuple[float, float]],
) -> Round:  # fmt: skip
    """N subscribers of ``tx_id``; then one worker, whose SUBMITTED they all receive."""
    from bench.measure import process_cpu, rss_kib
    from testkit.process import ServerProcess

    result = Round(size)
    processes = max(1, min(n_clients, size))
    counts = [size // processes + (1 if i < size % processes else 0) for i in range(processes)]
    ws_url = api.ws_url
    await asyncio.sleep(1.0)  # let the previous round's sockets go
    result.rss_before = rss_kib(api.pid)
    deadline = time.time() + budget
    config = {
        "url": ws_url, "token": token, "tx": tx_id, "deflate": deflate, "deadline": deadline,
        "in_flight": max(1, in_flight // processes),
    }  # fmt: skip
    async with clients(counts, config) as procs:
        answers = await asyncio.gather(*(c.line(budget + 60) for c in procs))
        for answer in answers:
            result.connected += int(answer["ready"])
            result.errors += answer["errors"]
            result.ready_at += answer["ready_at"]
        result.connect_seconds = max(a["finished"] for a in answers) - min(
            a["started"] for a in answers
        )
        await asyncio.sleep(2.0)  # idle: the last handshakes' garbage is collected by now
        result.rss_after = rss_kib(api.pid)
        async with ServerProcess(env, ("worker",), strict=False):
            answers = await asyncio.gather(*(c.line(EVENT_TIMEOUT + 30) for c in procs))
            cpu_after = process_cpu(api.pid)
        for answer in answers:
            result.received += answer["received"]
            result.statuses.update(answer["statuses"])
            result.errors += answer["errors"]
            event = answer["event"]
            if event is not None:
                result.at = dt.datetime.fromisoformat(event["at"]).timestamp()
                notified = arrivals.get((tx_id, int(event["seq"])))
                if notified is not None:
                    result.notified, cpu_before = notified
                    result.cpu = cpu_after - cpu_before
    return result


def report(rounds: Sequence[Round], deflate: bool, automine: bool, budget: float) -> None:
    from bench.measure import percentile, print_table

    rows: list[list[Any]] = []
    for r in rounds:
        last = (max(r.received) - r.at) * 1000 if r.received else float("nan")
        p50 = percentile([(t - r.at) * 1000 for t in r.received], 50)
        from_notify = (max(r.received) - r.notified) * 1000 if r.received else float("nan")
        per_sub = (r.rss_after - r.rss_before) / max(1, r.connected)
        rows.append(
            [f"{r.size:,}", f"{r.connected:,}", f"{len(r.received):,}", r.connect_seconds,
             p50, last, from_notify, r.cpu * 1000, r.rss_before / 1024, r.rss_after / 1024,
             per_sub]
        )  # fmt: skip
    print_table(
        "Fan-out of one SUBMITTED event to N subscribers of one transaction "
        f"(client permessage-deflate {'on' if deflate else 'off'}, anvil "
        f"{'automine' if automine else '--no-mining'})",
        ["N", "connected", "got the event", "connect s", "p50 ms from at",
         "last ms from at", "last ms from NOTIFY", "server CPU ms in fan-out",
         "RSS before MiB", "RSS after MiB", "KiB per idle subscription"],
        rows,
    )  # fmt: skip
    for r in rounds:
        extra = sorted(r.statuses - {"SUBMITTED"})
        if extra:
            print(f"N={r.size:,}: the subscribers also received {', '.join(extra)}")
        if r.errors:
            print(f"N={r.size:,}: {len(r.errors)} subscribers failed, e.g. {r.errors[:3]}")
        if r.connected + len(r.errors) < r.size:
            rate = r.connected / max(r.connect_seconds, 1e-9)
            print(
                f"N={r.size:,}: only {r.connected:,} subscribers were connected and initialised "
                f"within the {budget:.0f} s budget ({rate:,.0f}/s); the row measures those"
            )
    for r in rounds:
        first, last = r.connect_rates()
        if r.size >= 1000 and not math.isnan(first):
            print(
                f"N={r.size:,}: subscribers connected {first:,.0f}/s over the first fifth, "
                f"{last:,.0f}/s over the last fifth"
            )
    baseline = next((r for r in rounds if r.size == 1 and r.received), None)
    if baseline is not None:
        base = (max(baseline.received) - baseline.at) * 1000
        for r in rounds:
            if r.size > 1 and r.received:
                last = (max(r.received) - r.at) * 1000
                print(f"N={r.size:,}: last subscriber {last / base:,.0f}x the N=1 latency")


async def run(
    sizes: Sequence[int],
    n_clients: int,
    deflate: bool,
    automine: bool,
    budget: float,
    in_flight: int,
) -> None:
    import httpx

    from bench.measure import BENCH_ENV, bench_database, machine, notifications, process_cpu
    from testkit import graphql
    from testkit.anvil import Anvil
    from testkit.env import chain_of, walletql_env
    from testkit.pipeline import CREATE_USER, PASSWORD
    from testkit.postgres import asyncpg_dsn
    from testkit.process import ServerProcess
    from walletql.devauth import DevSigner

    print(machine())
    print(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    limit = raise_nofile()
    needed = max(sizes) + 200
    if limit < needed:
        print(f"open-file limit {limit} < {needed}: sizes above {limit - 200} are skipped")
        sizes = [s for s in sizes if s <= limit - 200]
    rounds: list[Round] = []
    arrivals: dict[tuple[str, int], tuple[float, float]] = {}
    async with (
        bench_database("fanout") as (url, data_dir),
        Anvil(chain_id=31337, no_mining=not automine) as anvil,
    ):
        signer = DevSigner(data_dir)  # the same key the API reads from WALLETQL_DATA_DIR
        token = signer.mint(f"bench-fanout-{uuid.uuid4().hex[:6]}")
        chain = chain_of(anvil, bump_interval_seconds=600, deadline_seconds=900)
        env = walletql_env(url, data_dir, **BENCH_ENV, WALLETQL_CHAINS=json.dumps([chain]))
        async with ServerProcess(env, ("serve", "--no-worker"), strict=False) as api:

            def notified(event: dict[str, Any], received: float) -> None:
                # The API server's CPU time when the event was committed.
                key = (event["tx"], int(event["seq"]))
                arrivals[key] = (received, process_cpu(api.pid))

            async with (
                notifications(asyncpg_dsn(url), notified),
                httpx.AsyncClient(base_url=api.url, timeout=60) as http,
            ):
                data = await graphql.data(
                    http, "/graphql", CREATE_USER, {"p": PASSWORD}, token=token
                )
                address = data["createUser"]["wallet"]["address"]
                await http.post(
                    anvil.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance",
                          "params": [address, hex(100 * 10**18)]},
                )  # fmt: skip
                await fan_out_rounds(
                    [1, *sizes], n_clients, env=env, api=api, http=http, token=token,
                    deflate=deflate, budget=budget, in_flight=in_flight,
                    arrivals=arrivals, rounds=rounds,
                )  # fmt: skip
    report(rounds, deflate, automine, budget)


async def fan_out_rounds(
    sizes: Sequence[int], n_clients: int, *, env: dict[str, str], api: ServerProcess,
    http: httpx.AsyncClient, token: str, deflate: bool, budget: float, in_flight: int,
    arrivals: dict[tuple[str, int], tuple[float, float]], rounds: list[Round],
) -> None:  # fmt: skip
    """One round per size, each on a transaction of its own."""
    from testkit import graphql
    from testkit.pipeline import PASSWORD, RECIPIENT

    for size in sizes:
        submit = {"to": RECIPIENT, "value": "1000", "password": PASSWORD}
        data = await graphql.data(http, "/graphql", SUBMIT, {"i": submit}, token=token)
        tx_id = data["submitTransaction"]["id"]
        rounds.append(
            await fan_out(
                size, n_clients, env=env, api=api, token=token, tx_id=tx_id,
                deflate=deflate, budget=budget, in_flight=in_flight, arrivals=arrivals,
            )
        )  # fmt: skip
        r = rounds[-1]
        print(
            f"N={size:,}: {r.connected:,} connected in {r.connect_seconds:.1f}"
            f" s, {len(r.received):,} got the event",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="subscriber counts (1 is added)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
    parser.add_argument("--automine", action="store_true", help="anvil mines every transaction")
    parser.add_argument(
        "--connect-budget",
        type=float,
        default=CONNECT_BUDGET,
        help=f"seconds per round to connect the subscribers (default {CONNECT_BUDGET:.0f})",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=IN_FLIGHT,
        help=f"subscribers being connected at once, in all (default {IN_FLIGHT})",
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        asyncio.run(client_main())
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    asyncio.run(
        run(
            sizes,
            max(1, args.clients),
            not args.no_deflate,
            args.automine,
            args.connect_budget,
            args.in_flight,
        )
    )


if __name__ == "__main__":
    main()
