"""Status discovery, push vs poll: how long after the worker commits a status change does a
client know it?

One ``walletql serve --no-worker`` API process and one ``walletql worker`` process, on anvil
(automine, plus a block every ~0.5 s so confirmations advance; 2 confirmations, so MINED and
CONFIRMED are distinct events). N transactions are submitted in a few concurrent lanes, and
every transaction is watched by three clients at once:

- push: ``transactionStatus(id, afterSeq: 0)`` over graphql-transport-ws;
- poll 1 s and poll 250 ms: ``transaction(id) { status events { seq status at } }``.

For each status change after QUEUED (SUBMITTED, MINED, CONFIRMED) the latency is the client's
``time.time()`` on receipt minus the event's ``at`` (set by the worker in the database
transaction that commits it; same machine clock). As a cross-check the script also LISTENs on
the events channel itself: a raw ``pg_notify`` arrives at commit, so ``at`` -> NOTIFY is the
time the worker still spends inside its transaction, and NOTIFY -> push is the API's share.

    python -m bench.push_vs_poll [--n 30] [--lanes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.measure import (
    BENCH_ENV,
    bench_database,
    machine,
    notifications,
    percentile,
    print_table,
)
from testkit import graphql
from testkit.anvil import Anvil
from testkit.env import chain_of, walletql_env
from testkit.pipeline import CREATE_USER, FINAL, PASSWORD, RECIPIENT
from testkit.postgres import asyncpg_dsn
from testkit.process import ServerProcess
from testkit.ws import GraphQLWS
from walletql.devauth import DevSigner

WATCHED = ("SUBMITTED", "MINED", "CONFIRMED")
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }"
POLL = "query($id: ID!) { transaction(id: $id) { status events { seq status at } } }"
SUBSCRIBE = "subscription($id: ID!) { transactionStatus(id: $id, afterSeq: 0) { seq status at } }"
MINE_EVERY = 0.5
GOLDEN = 0.6180339887498949
TX_TIMEOUT = 60.0
PUSH, POLL_1S, POLL_250MS = "push (subscription)", "poll every 1 s", "poll every 250 ms"


def at_seconds(value: str) -> float:
    """An event's ``at`` (ISO 8601 with an offset) as a Unix timestamp."""
    return dt.datetime.fromisoformat(value).timestamp()


@dataclass
class Seen:
    """What one client learned about one transaction: per status, the first time it saw it
    as (seq, at, receipt time)."""

    tx_id: str
    first: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    requests: int = 0
    sent: float = 0.0  # push only: when the subscribe was sent

    def note(self, event: dict[str, Any], received: float) -> None:
        status = event["status"]
        if status in WATCHED and status not in self.first:
            self.first[status] = (int(event["seq"]), at_seconds(event["at"]), received)


@dataclass
class Results:
    clients: dict[str, list[Seen]] = field(default_factory=dict)
    notify: dict[tuple[str, int], float] = field(default_factory=dict)  # (tx, seq) -> arrival
    submits: int = 0


class Api:
    """GraphQL over HTTP against the API process, with one pooled client."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/graphql"
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=32))

    async def call(self, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await graphql.data(self.http, self.url, query, variables, token=token)

    async def close(self) -> None:
        await self.http.aclose()


async def rpc(client: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    answer = (await client.post(url, json=payload)).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


async def miner(url: str, stop: asyncio.Event) -> None:
    """A block every MINE_EVERY seconds, so confirmations advance; stops with ``stop``."""
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            await rpc(client, url, "evm_mine", [])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MINE_EVERY)


async def poller(api: Api, token: str, tx_id: str, interval: float, phase: float) -> Seen:
    """``transaction(id)`` every ``interval`` seconds until a final status, the first time
    ``phase`` (0..1) of an interval after the submit: a poller's clock is not in step with
    the worker's, so each transaction gets another phase."""
    seen = Seen(tx_id)
    loop = asyncio.get_running_loop()
    start = loop.time() + phase * interval
    deadline = start + TX_TIMEOUT
    await asyncio.sleep(phase * interval)
    tick = 0
    while loop.time() < deadline:
        data = await api.call(token, POLL, {"id": tx_id})
        received = time.time()
        seen.requests += 1
        tx = data["transaction"]
        for event in tx["events"]:
            seen.note(event, received)
        if tx["status"] in FINAL:
            return seen
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * interval - loop.time()))
    raise TimeoutError(f"transaction {tx_id} not final after {TX_TIMEOUT}s (poll {interval}s)")


async def pusher(ws: GraphQLWS, op_id: str, tx_id: str) -> Seen:
    """Subscribe with afterSeq 0 and read until the operation completes."""
    assert ws.ws is not None
    seen = Seen(tx_id, sent=time.time())
    await ws.subscribe(op_id, SUBSCRIBE, {"id": tx_id})
    async with asyncio.timeout(TX_TIMEOUT):
        while True:
            raw = await ws.ws.recv()
            received = time.time()
            message = json.loads(raw)
            if message.get("id") != op_id:
                continue
            if message["type"] == "complete":
                return seen
            if message["type"] != "next":
                raise RuntimeError(f"subscription failed: {message}")
            seen.note(message["payload"]["data"]["transactionStatus"], received)


async def lane(
    index: int,
    lanes: int,
    count: int,
    api: Api,
    ws_url: str,
    signer: DevSigner,
    rpc_url: str,
    r: Results,
) -> None:
    """One user: submit ``count`` transactions one after another, each watched three ways."""
    token = signer.mint(f"bench-push-lane-{index}-{uuid.uuid4().hex[:6]}")
    data = await api.call(token, CREATE_USER, {"p": PASSWORD})
    address = data["createUser"]["wallet"]["address"]
    async with httpx.AsyncClient(timeout=5) as client:
        await rpc(client, rpc_url, "anvil_setBalance", [address, hex(100 * 10**18)])
    async with GraphQLWS(ws_url, token, ping_interval=None) as ws:
        for k in range(count):
            data = await api.call(
                token, SUBMIT, {"i": {"to": RECIPIENT, "value": "1000", "password": PASSWORD}}
            )
            r.submits += 1
            tx_id = data["submitTransaction"]["id"]
            phase = (GOLDEN * (k * lanes + index)) % 1.0  # evenly spread over [0, 1)
            push, slow, fast = await asyncio.gather(
                pusher(ws, f"op-{k}", tx_id),
                poller(api, token, tx_id, 1.0, phase),
                poller(api, token, tx_id, 0.25, phase),
            )
            r.clients.setdefault(PUSH, []).append(push)
            r.clients.setdefault(POLL_1S, []).append(slow)
            r.clients.setdefault(POLL_250MS, []).append(fast)


def latencies(seen: Sequence[Seen], status: str | None = None) -> list[float]:
    return [
        (received - at) * 1000
        for s in seen
        for name, (_seq, at, received) in s.first.items()
        if status is None or name == status
    ]


def drop_unpushed(results: Results) -> int:
    """Leave out of the push figures the status changes committed (our NOTIFY arrived)
    before the subscribe was even sent: those were read from the log, not pushed."""
    dropped = 0
    for seen in results.clients.get(PUSH, []):
        for status, (seq, at, _received) in list(seen.first.items()):
            if results.notify.get((seen.tx_id, seq), at) < seen.sent:
                del seen.first[status]
                dropped += 1
    return dropped


def report(results: Results, n: int, lanes: int, elapsed: float) -> None:
    dropped = drop_unpushed(results)
    rows: list[list[Any]] = []
    p50s: dict[str, float] = {}
    for client, watched in results.clients.items():
        values = latencies(watched)
        requests = sum(s.requests for s in watched) / max(1, len(watched))
        p50s[client] = percentile(values, 50)
        rows.append([client, percentile(values, 50), percentile(values, 99), requests, len(values)])
    print_table(
        f"Status discovery, {n} transactions in {lanes} lanes ({elapsed:.0f} s): "
        "latency from the event's commit (`at`) to the client knowing it",
        ["client", "p50 ms", "p99 ms", "requests/tx", "status changes"],
        rows,
    )
    push, slow = p50s.get(PUSH), p50s.get(POLL_1S)
    if push and slow:
        print(f"\npoll-1s p50 / push p50 = {slow / push:,.0f}x")
    print(
        f"submits: {results.submits} ({results.submits / max(1, n):.0f} request per transaction"
        " for every client; not counted in requests/tx)"
    )
    pushed = results.clients.get(PUSH, [])
    if dropped:
        print(
            f"push: {dropped} status change(s) were committed before the subscribe was sent "
            "(read from the log, not pushed) and are left out"
        )

    # Where the push latency goes: `at` -> our LISTEN's NOTIFY (the rest of the worker's
    # database transaction, its commit, PostgreSQL's delivery), NOTIFY -> the subscriber
    # (the API process: its listener, the hub, the GraphQL execution, the websocket).
    rows = []
    for status in WATCHED:
        total: list[float] = []
        worker: list[float] = []
        api: list[float] = []
        for seen in pushed:
            if status not in seen.first:
                continue
            seq, at, received = seen.first[status]
            total.append((received - at) * 1000)
            notified = results.notify.get((seen.tx_id, seq))
            if notified is not None:
                worker.append((notified - at) * 1000)
                api.append((received - notified) * 1000)
        rows.append(
            [status, len(total), percentile(total, 50), percentile(total, 99),
             percentile(worker, 50), percentile(api, 50), percentile(api, 99)]
        )  # fmt: skip
    print_table(
        "Push latency by status, split at our own LISTEN's receipt of the NOTIFY (~ commit)",
        ["status", "n", "at->client p50 ms", "at->client p99 ms", "at->NOTIFY p50 ms",
         "NOTIFY->client p50 ms", "NOTIFY->client p99 ms"],
        rows,
    )  # fmt: skip


async def run(n: int, lanes: int) -> None:
    print(machine())
    print(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    results = Results()
    elapsed = 0.0
    async with bench_database("push_vs_poll") as (url, data_dir), Anvil(chain_id=31337) as anvil:
        signer = DevSigner(data_dir)  # the same key the API reads from WALLETQL_DATA_DIR
        env = walletql_env(
            url,
            data_dir,
            **BENCH_ENV,
            WALLETQL_CHAINS=json.dumps([chain_of(anvil, confirmations=2)]),
            WALLETQL_WORKER_CHECK_INTERVAL_SECONDS="0.5",
            WALLETQL_QUEUE_WAIT_SECONDS="1",
        )
        stop = asyncio.Event()

        def notified(event: dict[str, Any], received: float) -> None:
            results.notify[(event["tx"], int(event["seq"]))] = received

        async with (
            ServerProcess(env, ("serve", "--no-worker"), strict=False) as api_proc,
            ServerProcess(env, ("worker",), strict=False),
            notifications(asyncpg_dsn(url), notified),
        ):
            mining = asyncio.create_task(miner(anvil.url, stop))
            api = Api(api_proc.url)
            ws_url = api_proc.ws_url
            started = time.perf_counter()
            try:
                per_lane = [n // lanes + (1 if i < n % lanes else 0) for i in range(lanes)]
                await asyncio.gather(
                    *(
                        lane(i, lanes, c, api, ws_url, signer, anvil.url, results)
                        for i, c in enumerate(per_lane)
                        if c
                    )
                )
            finally:
                elapsed = time.perf_counter() - started
                stop.set()
                await mining
                await api.close()
    report(results, n, lanes, elapsed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="transactions (default 30)")
    parser.add_argument("--lanes", type=int, default=3, help="concurrent lanes (default 3)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.n, max(1, args.lanes)))


if __name__ == "__main__":
    main()
