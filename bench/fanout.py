"""Fan-out: one status change of one transaction, pushed to N subscribers, against the floor.

One ``walletql serve --no-worker`` process on anvil, one user, and the floor
(bench/fanout_floor.py: a bare Starlette app on the same uvicorn and websocket protocol that
writes one prepared ``next`` frame to every socket), both served to the same client. For
each N (1, then ``--sizes``), the floor's round and then walletql's: N graphql-transport-ws
subscribers (this script's ``--client`` mode, a few processes on the ``websockets``
package) subscribe to ``transactionStatus(id: X)`` and get the initial message; the
server's RSS is read; then one event: for walletql SUBMITTED committed from here as the
worker commits it (status, event row, NOTIFY in one transaction), for the floor a NOTIFY
from here. The figure is the time
from our own LISTEN's receipt of that NOTIFY (~ the commit) to the moment the LAST
subscriber has the event (wall clocks of one machine), and the server's RSS growth per idle
subscription (VmRSS before connecting and 2 s after the last subscriber is initialised).
walletql / floor is printed for both, with the load average at the time: these cores are
shared, so only same-run ratios mean much.

Subscribers are connected a few at a time (``--in-flight``); a round that has not connected
all N within ``--connect-budget`` seconds goes on with those it has, and says so.

    python -m bench.fanout [--sizes 1000,10000] [--clients 4] [--no-deflate]
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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from testkit.ws import GraphQLWS

# The client processes import only the above (a fraction of a second to start); the
# benchmark's own imports (walletql, web3, asyncpg, ...) are made in the parent only.

SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }"
SUBSCRIBE = "subscription($id: ID!) { transactionStatus(id: $id) { seq status at } }"
CONNECT_BUDGET = 300.0  # default seconds per round for connecting and initialising N sockets
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
    server: str  # "walletql" or "floor"
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
    load: str = ""  # load average just before the event

    def connect_rates(self) -> tuple[float, float]:
        """Subscribers connected per second over the first and the last fifth of them."""
        times = sorted(self.ready_at)
        fifth = len(times) // 5
        if fifth < 2:
            return float("nan"), float("nan")
        first = fifth / max(times[fifth - 1] - times[0], 1e-9)
        last = fifth / max(times[-1] - times[-fifth], 1e-9)
        return first, last

    @property
    def last_from_notify(self) -> float:
        """Milliseconds from our LISTEN's receipt of the NOTIFY to the last delivery."""
        return (max(self.received) - self.notified) * 1000 if self.received else float("nan")

    @property
    def kib_per_subscription(self) -> float:
        return (self.rss_after - self.rss_before) / max(1, self.connected)


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


@dataclass
class Target:
    """A server under test: its process, its socket URL, and how one event is made."""

    server: str
    pid: int
    ws_url: str
    event: Callable[[str], contextlib.AbstractAsyncContextManager[Any]]  # (tx id)


async def fan_out(
    target: Target, size: int, n_clients: int, *, token: str, tx_id: str, deflate: bool,
    budget: float, in_flight: int, arrivals: dict[tuple[str, int], tuple[float, float]],
) -> Round:  # fmt: skip
    """N subscribers of ``tx_id``; then one event, which they all receive."""
    from bench.measure import load_average, process_cpu, rss_kib

    result = Round(target.server, size)
    processes = max(1, min(n_clients, size))
    counts = [size // processes + (1 if i < size % processes else 0) for i in range(processes)]
    await asyncio.sleep(1.0)  # let the previous round's sockets go
    result.rss_before = rss_kib(target.pid)
    deadline = time.time() + budget
    config = {
        "url": target.ws_url, "token": token, "tx": tx_id, "deflate": deflate,
        "deadline": deadline, "in_flight": max(1, in_flight // processes),
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
        result.rss_after = rss_kib(target.pid)
        result.load = load_average()
        async with target.event(tx_id):
            answers = await asyncio.gather(*(c.line(EVENT_TIMEOUT + 30) for c in procs))
            cpu_after = process_cpu(target.pid)
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


def report(rounds: Sequence[Round], deflate: bool, budget: float) -> None:
    from bench.measure import percentile, print_table

    rows: list[list[Any]] = []
    for r in rounds:
        p50 = percentile([(t - r.notified) * 1000 for t in r.received], 50)
        rows.append(
            [r.server, f"{r.size:,}", f"{r.connected:,}", f"{len(r.received):,}",
             r.connect_seconds, p50, r.last_from_notify, r.cpu * 1000, r.rss_before / 1024,
             r.rss_after / 1024, r.kib_per_subscription, r.load]
        )  # fmt: skip
    print_table(
        "Fan-out of one SUBMITTED event to N subscribers of one transaction "
        f"(client permessage-deflate {'on' if deflate else 'off'}); floor: a bare Starlette "
        "app on the same uvicorn writing one prepared frame to every socket",
        ["server", "N", "connected", "got the event", "connect s", "p50 ms from NOTIFY",
         "last ms from NOTIFY", "server CPU ms in fan-out", "RSS before MiB", "RSS after MiB",
         "KiB per idle subscription", "load average"],
        rows,
    )  # fmt: skip
    for r in rounds:
        extra = sorted(r.statuses - {"SUBMITTED"})
        if extra:
            print(f"{r.server} N={r.size:,}: the subscribers also received {', '.join(extra)}")
        if r.errors:
            print(
                f"{r.server} N={r.size:,}: {len(r.errors)} subscribers failed, e.g. {r.errors[:3]}"
            )
        if r.connected + len(r.errors) < r.size:
            rate = r.connected / max(r.connect_seconds, 1e-9)
            print(
                f"{r.server} N={r.size:,}: only {r.connected:,} subscribers were connected and "
                f"initialised within the {budget:.0f} s budget ({rate:,.0f}/s); the row "
                "measures those"
            )
    for r in rounds:
        first, last = r.connect_rates()
        if r.size >= 1000 and not math.isnan(first):
            print(
                f"{r.server} N={r.size:,}: subscribers connected {first:,.0f}/s over the first "
                f"fifth, {last:,.0f}/s over the last fifth"
            )
    print()
    for ours in rounds:
        floor = next((r for r in rounds if r.server == "floor" and r.size == ours.size), None)
        if ours.server != "walletql" or ours.size < 1000 or floor is None:
            continue
        time_ratio = ours.last_from_notify / floor.last_from_notify
        memory_ratio = ours.kib_per_subscription / floor.kib_per_subscription
        print(
            f"N={ours.size:,} walletql / floor: last delivery from the NOTIFY {time_ratio:.2f}x "
            f"({ours.last_from_notify:,.0f} ms / {floor.last_from_notify:,.0f} ms); "
            f"KiB per idle subscription {memory_ratio:.2f}x "
            f"({ours.kib_per_subscription:.1f} / {floor.kib_per_subscription:.1f}); "
            f"load average {ours.load} / {floor.load}"
        )


@contextlib.asynccontextmanager
async def recorded_event(dsn: str, tx_id: str) -> AsyncIterator[None]:
    """SUBMITTED for ``tx_id``, committed from here as services/events.record_event commits
    it (the status, the event row with the next seq and userSeq, the NOTIFY, in one
    transaction). A worker process would do the same, but its start-up would take CPU from
    the clients while they receive, which the floor's round does not pay."""
    import asyncpg

    from services.events import CHANNEL

    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            row = await connection.fetchrow(
                "UPDATE transactions SET status = 'SUBMITTED', last_seq = last_seq + 1 "
                "WHERE id = $1 RETURNING user_id, last_seq",
                uuid.UUID(tx_id),
            )
            assert row is not None
            user_seq = await connection.fetchval(
                "UPDATE users SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq",
                row["user_id"],
            )
            at = dt.datetime.now(dt.UTC)
            await connection.execute(
                "INSERT INTO transaction_events (transaction_id, user_id, seq, user_seq, status,"
                " at) VALUES ($1, $2, $3, $4, 'SUBMITTED', $5)",
                uuid.UUID(tx_id), row["user_id"], row["last_seq"], user_seq, at,
            )  # fmt: skip
            payload = {"tx": tx_id, "user": str(row["user_id"]), "seq": row["last_seq"],
                       "useq": user_seq, "status": "SUBMITTED", "reason": None,
                       "at": at.isoformat()}  # fmt: skip
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload))
        yield
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def floor_server(dsn: str) -> AsyncIterator[Target]:
    """The floor (bench/fanout_floor.py) as a process of its own; its events are NOTIFYs
    sent from here."""
    import asyncpg

    from bench.fanout_floor import FLOOR_CHANNEL
    from testkit import ROOT
    from testkit.net import free_port, wait_http
    from testkit.process import stop_process

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fanout_floor", "--port", str(port), "--dsn", dsn, cwd=ROOT,
    )  # fmt: skip
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc, seconds=60)

        @contextlib.asynccontextmanager
        async def event(tx_id: str) -> AsyncIterator[None]:
            payload = {"tx": tx_id, "seq": 2, "status": "SUBMITTED", "floor": True,
                       "at": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute(
                    "SELECT pg_notify($1, $2)", FLOOR_CHANNEL, json.dumps(payload)
                )
                yield
            finally:
                await connection.close()

        yield Target("floor", proc.pid, f"ws://127.0.0.1:{port}/graphql", event)
    finally:
        await stop_process(proc, strict=False)


async def run(
    sizes: Sequence[int],
    n_clients: int,
    deflate: bool,
    budget: float,
    in_flight: int,
) -> None:
    import httpx

    from bench.fanout_floor import FLOOR_CHANNEL
    from bench.measure import (
        BENCH_ENV,
        bench_database,
        load_average,
        machine,
        notifications,
        process_cpu,
    )
    from testkit import graphql
    from testkit.anvil import Anvil
    from testkit.env import chain_of, walletql_env
    from testkit.pipeline import CREATE_USER, PASSWORD, RECIPIENT
    from testkit.postgres import asyncpg_dsn
    from testkit.process import ServerProcess
    from walletql.devauth import DevSigner

    print(machine())
    print(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print(f"load average at the start: {load_average()} (other processes share these cores)")
    limit = raise_nofile()
    needed = max(sizes) + 200
    if limit < needed:
        print(f"open-file limit {limit} < {needed}: sizes above {limit - 200} are skipped")
        sizes = [s for s in sizes if s <= limit - 200]
    rounds: list[Round] = []
    arrivals: dict[tuple[str, int], tuple[float, float]] = {}
    async with (
        bench_database("fanout") as (url, data_dir),
        Anvil(chain_id=31337, no_mining=True) as anvil,
    ):
        signer = DevSigner(data_dir)  # the same key the API reads from WALLETQL_DATA_DIR
        token = signer.mint(f"bench-fanout-{uuid.uuid4().hex[:6]}")
        chain = chain_of(anvil, bump_interval_seconds=600, deadline_seconds=900)
        env = walletql_env(url, data_dir, **BENCH_ENV, WALLETQL_CHAINS=json.dumps([chain]))
        dsn = asyncpg_dsn(url)
        async with (
            ServerProcess(env, ("serve", "--no-worker"), strict=False) as api,
            floor_server(dsn) as floor,
        ):

            def notified(event: dict[str, Any], received: float) -> None:
                # The server's CPU time when the event was committed.
                pid = floor.pid if event.get("floor") else api.pid
                arrivals[(event["tx"], int(event["seq"]))] = (received, process_cpu(pid))

            walletql = Target("walletql", api.pid, api.ws_url, lambda tx: recorded_event(dsn, tx))
            async with (
                notifications(dsn, notified, FLOOR_CHANNEL),
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
                for size in [1, *sizes]:
                    for target in (floor, walletql):
                        submit = {"to": RECIPIENT, "value": "1000", "password": PASSWORD}
                        data = await graphql.data(
                            http, "/graphql", SUBMIT, {"i": submit}, token=token
                        )
                        rounds.append(
                            await fan_out(
                                target, size, n_clients, token=token,
                                tx_id=data["submitTransaction"]["id"], deflate=deflate,
                                budget=budget, in_flight=in_flight, arrivals=arrivals,
                            )
                        )  # fmt: skip
                        r = rounds[-1]
                        print(
                            f"{r.server} N={size:,}: {r.connected:,} connected in "
                            f"{r.connect_seconds:.1f} s, {len(r.received):,} got the event, "
                            f"the last {r.last_from_notify:,.0f} ms after the NOTIFY "
                            f"(load average {r.load})",
                            flush=True,
                        )
    report(rounds, deflate, budget)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="subscriber counts (1 is added)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
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
            args.connect_budget,
            args.in_flight,
        )
    )


if __name__ == "__main__":
    main()
