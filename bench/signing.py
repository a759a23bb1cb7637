"""Signing cost: what one unlock (Argon2id at the default parameters) costs, and what signing
does to everybody else's latency.

1. The KDF alone, in this process, single-threaded: Argon2id ``derive`` and
   ``KeyVault.open`` (Argon2id + HKDF + AES-GCM) one after the other, giving unlocks per
   second per core; then two at once (the default ``kdf_concurrency``) to see whether the
   threads really run in parallel.
2. One ``walletql serve --no-worker`` (embedded chain): ``signTransaction`` p50/p99 sent one
   after the other, then its throughput with 8 concurrent clients.
3. ``me`` at a fixed arrival rate from a separate load process (``bench.api_throughput
   --load``): alone, with 8 ``signMessage`` loops running, with 8 ``signTransaction`` loops
   running; three rounds, each opening with another phase, so that noise from other
   processes falls on every phase alike. Each phase's p99 is taken over its rounds' samples
   pooled (1,500 requests: a p99 of one 500-request phase is its 5th-worst request).
   Target: p99 under signing ≤ 2x the p99 alone.

    python -m bench.signing            # ~2.5 min
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.api_throughput import PASSWORD, Step, Target, create_user, run_step
from bench.measure import (
    BENCH_ENV,
    bench_database,
    load_average,
    machine,
    percentile,
    print_table,
    process_cpu,
    run_script,
)
from services.keys import KdfParams, KeyVault
from testkit.env import walletql_env
from testkit.process import ServerProcess
from walletql.settings import Settings

SUB = "bench-signing-user"
TO = "0x000000000000000000000000000000000000dEaD"
SIGN_TX = "mutation($input: SignTransactionInput!) { signTransaction(input: $input) { raw hash } }"
SIGN_MSG = "mutation($input: SignMessageInput!) { signMessage(input: $input) { signature } }"

KDF_ROUNDS = 24
SEQUENTIAL = 100
CONCURRENCY = 8
CONCURRENT_SECONDS = 8.0
ME_RATE = 50
ME_SECONDS = 10.0
ME_ROUNDS = 3
T = TypeVar("T")
PHASES: list[tuple[str, str | None]] = [
    ("me alone", None),
    (f"me + {CONCURRENCY} signMessage loops", "signMessage"),
    (f"me + {CONCURRENCY} signTransaction loops", "signTransaction"),
]
ME_CONNECTIONS = 8
RAMP_SECONDS = 0.5


def default_kdf() -> KdfParams:
    """The KDF parameters a server uses when nothing is configured."""
    fields = Settings.model_fields
    return KdfParams(
        fields["kdf_memory_kib"].default,
        fields["kdf_iterations"].default,
        fields["kdf_lanes"].default,
    )


def ms(values: Sequence[float]) -> tuple[float, float]:
    return percentile(values, 50) * 1000, percentile(values, 99) * 1000


# --------------------------------------------------------------------------------------------
# 1. The KDF in this process
# --------------------------------------------------------------------------------------------


def derive_once(params: KdfParams) -> tuple[float, float]:
    """One Argon2id derive: (wall seconds, CPU seconds of this thread)."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    started, cpu = time.perf_counter(), time.thread_time()
    Argon2id(
        salt=secrets.token_bytes(16),
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(PASSWORD.encode())
    return time.perf_counter() - started, time.thread_time() - cpu


def derive_in_threads(params: KdfParams, threads: int, rounds: int) -> float:
    """Derives per second with ``threads`` threads deriving at once."""
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(rounds):
            derive_once(params)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * rounds / (time.perf_counter() - started)


async def kdf_rows(params: KdfParams) -> list[list[Any]]:
    derive_once(params)  # warm-up
    runs = [derive_once(params) for _ in range(KDF_ROUNDS)]
    alone, cpu = [wall for wall, _ in runs], [c for _, c in runs]

    vault = KeyVault(secrets.token_hex(32).encode(), params, concurrency=2)
    try:
        user_id, address = uuid.uuid4(), "0x" + secrets.token_hex(20)
        key = secrets.token_bytes(32)
        sealed = await vault.seal(key, PASSWORD, user_id=user_id, address=address)
        opens = []
        for _ in range(KDF_ROUNDS):
            started = time.perf_counter()
            assert await vault.open(sealed, PASSWORD, user_id=user_id, address=address) == key
            opens.append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                vault.open(sealed, PASSWORD, user_id=user_id, address=address)
                for _ in range(KDF_ROUNDS)
            )
        )
        vault_pair_rate = KDF_ROUNDS / (time.perf_counter() - started)
    finally:
        vault.close()
    two_threads = await asyncio.to_thread(derive_in_threads, params, 2, KDF_ROUNDS // 2)

    label = f"m={params.memory_kib} KiB, t={params.iterations}, p={params.lanes}"
    open_rate = len(opens) / sum(opens)
    return [
        [
            f"Argon2id derive ({label}), 1 thread",
            *ms(alone),
            statistics.median(cpu) * 1000,
            1 / statistics.median(alone),
            1 / statistics.median(cpu),
        ],
        ["KeyVault.open (Argon2id + HKDF + AES-GCM), 1 at a time", *ms(opens), "", open_rate, ""],
        ["KeyVault.open, 2 at a time (kdf_concurrency=2)", "", "", "", vault_pair_rate, ""],
        ["Argon2id derive, 2 threads at once", "", "", "", two_threads, ""],
    ]


# --------------------------------------------------------------------------------------------
# 2 and 3. The server
# --------------------------------------------------------------------------------------------


@dataclass
class Signer:
    """Signing requests against one server, with their latencies and failures."""

    client: httpx.AsyncClient
    url: str
    token: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def sign(self, kind: str) -> None:
        if kind == "signTransaction":
            body = {
                "query": SIGN_TX,
                "variables": {"input": {"to": TO, "value": "1", "password": PASSWORD}},
            }
        else:
            body = {
                "query": SIGN_MSG,
                "variables": {"input": {"message": "walletql bench", "password": PASSWORD}},
            }
        started = time.perf_counter()
        response = await self.client.post(
            f"{self.url}/graphql", json=body, headers={"authorization": f"Bearer {self.token}"}
        )
        self.latencies.append(time.perf_counter() - started)
        payload = response.json()
        if response.status_code != 200 or payload.get("errors") or not payload.get("data"):
            self.errors.append(f"{response.status_code} {payload}"[:300])

    async def loops(self, kind: str, stop: asyncio.Event, n: int = CONCURRENCY) -> float:
        """``n`` clients signing back to back until ``stop``; returns signings per second."""
        done_before = len(self.latencies)
        started = time.perf_counter()

        async def loop() -> None:
            while not stop.is_set():
                await self.sign(kind)

        await asyncio.gather(*(loop() for _ in range(n)))
        return (len(self.latencies) - done_before) / (time.perf_counter() - started)


def _rotated(items: list[T], n: int) -> list[T]:
    """``items`` starting at its ``n``-th (mod its length): each round opens with another."""
    k = n % len(items)
    return items[k:] + items[:k]


async def me_phase(
    target: Target, signer: Signer, token: str, label: str, kind: str | None
) -> tuple[Step, float]:
    """``me`` at ME_RATE/s from a separate process, with 8 ``kind`` loops running (or none)."""
    stop = asyncio.Event()
    background = asyncio.create_task(signer.loops(kind, stop)) if kind else None
    try:
        if background is not None:
            await asyncio.sleep(RAMP_SECONDS)
        spec = {"mode": "open", "seconds": ME_SECONDS, "connections": ME_CONNECTIONS}
        step = await run_step(target, token, label, {**spec, "rate": ME_RATE})
    finally:
        stop.set()
    rate = await background if background is not None else 0.0
    return step, rate


async def server_part(url: str, data_dir: Path) -> None:
    from walletql.devauth import DevSigner

    env = walletql_env(url, data_dir, **BENCH_ENV)
    token = DevSigner(data_dir).mint(SUB, ttl=3600)
    limits = httpx.Limits(max_connections=CONCURRENCY + 2, max_keepalive_connections=CONCURRENCY)
    async with (
        ServerProcess(env, ("serve", "--no-worker")) as server,
        httpx.AsyncClient(timeout=120, limits=limits) as client,
    ):
        address = await create_user(server.url, token)
        target = Target("walletql", server.url, server.pid, address)
        signer = Signer(client, server.url, token)
        for _ in range(3):  # warm-up: imports, the chain's first answers
            await signer.sign("signTransaction")

        signer.latencies.clear()
        for _ in range(SEQUENTIAL):
            await signer.sign("signTransaction")
        sequential = list(signer.latencies)

        signer.latencies.clear()
        stop = asyncio.Event()
        cpu0, wall0 = process_cpu(server.pid), time.perf_counter()
        loop_task = asyncio.create_task(signer.loops("signTransaction", stop))
        await asyncio.sleep(CONCURRENT_SECONDS)
        stop.set()
        concurrent_rate = await loop_task
        concurrent_cpu = (process_cpu(server.pid) - cpu0) / (time.perf_counter() - wall0)
        concurrent = list(signer.latencies)

        # Rounds rotate through the phases so that noise from other processes falls on
        # each alike; each phase's p99 is taken over its rounds' samples pooled.
        phases: list[tuple[str, str | None, Step, float]] = []
        for round_no in range(ME_ROUNDS):
            for label, kind in _rotated(PHASES, round_no):
                step, rate = await me_phase(target, signer, token, label, kind)
                phases.append((label, kind, step, rate))
        errors = signer.errors

    print_table(
        f"signTransaction against one server (default KDF, kdf_concurrency="
        f"{Settings(_env_file=None).kdf_concurrency})",
        ["run", "requests", "p50 ms", "p99 ms", "signings/s", "server CPU"],
        [
            [
                f"sequential, 1 client ({SEQUENTIAL} requests)",
                len(sequential),
                *ms(sequential),
                len(sequential) / sum(sequential),
                "",
            ],
            [
                f"{CONCURRENCY} concurrent clients, {CONCURRENT_SECONDS:.0f} s",
                len(concurrent),
                *ms(concurrent),
                concurrent_rate,
                f"{concurrent_cpu:.0%}",
            ],
        ],
    )

    rows = []
    for round_no, (label, _kind, step, rate) in enumerate(phases):
        r = step.result
        rows.append(
            [
                round_no // len(PHASES) + 1,
                label,
                round(r["rps"], 1),
                r["p50_ms"],
                r["p99_ms"],
                r["errors"] + r["unfinished"],
                round(rate, 1) if rate else "-",
                f"{step.server_cpu:.0%}",
                f"{step.machine_cpu:.2f}",
            ]
        )
    print_table(
        f"`me` at {ME_RATE} req/s (open model, separate process) while signing runs, "
        f"{ME_ROUNDS} rounds of {ME_SECONDS:.0f} s per phase",
        [
            "round",
            "phase",
            "me req/s",
            "me p50 ms",
            "me p99 ms",
            "me errors+lost",
            "signings/s",
            "server CPU",
            "cores busy (all)",
        ],
        rows,
    )
    pooled = {
        label: [
            x for lbl, _k, step, _r in phases if lbl == label for x in step.result["latencies_ms"]
        ]
        for label, _kind in PHASES
    }
    alone_label = PHASES[0][0]
    alone = percentile(pooled[alone_label], 99)
    print(
        f"\n`me` alone, all rounds pooled: {len(pooled[alone_label])} requests, p99 {alone:.1f} ms"
    )
    for label, kind in PHASES[1:]:
        p99 = percentile(pooled[label], 99)
        ratio = p99 / alone
        verdict = "met" if ratio <= 2 else "NOT met"
        print(
            f"`me` p99 with {CONCURRENCY}x {kind} / alone (all rounds pooled, "
            f"{len(pooled[label])} requests): {p99:.1f} / {alone:.1f} ms = {ratio:.2f}x; "
            f"target ≤ 2x: {verdict}"
        )
    if errors:
        print(f"\n{len(errors)} signing requests failed; first: {errors[0]}")


async def main() -> None:
    print(f"{machine()}, {dt.date.today()}")
    print("\nSigning cost: the KDF in-process, then signTransaction against one server.")
    print(f"load average before: {load_average()} (other processes share these cores)")
    params = default_kdf()
    print_table(
        "The KDF alone, in this process (per core = 1 / median thread CPU time of one derive)",
        ["what", "p50 ms", "p99 ms", "CPU ms", "per s (wall)", "per s per core (CPU)"],
        await kdf_rows(params),
    )
    async with bench_database("signing") as (url, data_dir):
        await server_part(url, data_dir)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    run_script(__doc__, main)
