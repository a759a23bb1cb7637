"""What one ``submitTransaction`` costs the API process in CPU, against its KDF.

One ``walletql serve --no-worker`` on anvil (JSON-RPC, as in production) and PostgreSQL;
one funded user submits one transaction at a time (no worker: nothing else runs in the API).
The API's CPU per submit is its process CPU over the run (from /proc) divided by the submits.
The KDF's CPU is measured in this process in the same run: Argon2id at the default parameters,
thread CPU time, median. Target: API CPU per submit ≤ the KDF's CPU + 10 ms.

The breakdown: the KDF is its threads' own CPU (/proc/PID/task, the threads named by py-spy);
the rest of the process's CPU is split by py-spy (a dev dependency) sampling the thread that
holds the GIL during the same submits: each sample goes to the first of signatures (the fee
ladder, ECDSA), RPC (the chain port and its HTTP client), database (SQLAlchemy, asyncpg),
GraphQL (strawberry, graphql-core) and HTTP and the rest (uvicorn, starlette, the event loop)
that its stack contains.

    uv run --no-sync python -m bench.submit_cost            # ~1 min
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.measure import (
    BENCH_ENV,
    CLOCK_TICKS,
    DATA,
    bench_postgres,
    load_average,
    machine,
    print_table,
    process_cpu,
    run_script,
)
from bench.signing import default_kdf, derive_once
from testkit import graphql
from testkit.anvil import Anvil
from testkit.env import chain_of, walletql_env
from testkit.pipeline import RECIPIENT
from testkit.postgres import fresh_database
from testkit.process import ServerProcess
from walletql.devauth import DevSigner

PASSWORD = "correct horse battery staple"  # noqa: S105 (the bench user's password)
CREATE_USER = "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }"
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }"
WARMUP = 3
SUBMITS = 40
KDF_ROUNDS = 15
TARGET_MS = 10.0
CATEGORIES = ("KDF", "signatures", "RPC", "database", "GraphQL", "HTTP and the rest")


def category(stack: str) -> str:
    """The part of a submit one py-spy sample (a raw, ``--threads`` stack) belongs to."""
    if "services/keys.py" in stack:
        return "KDF"
    signing = ("build_ladder", "services/transactions_build.py", "eth_account/", "eth_keys/")
    if any(part in stack for part in signing):
        return "signatures"
    if any(part in stack for part in ("services/rpc.py", "services/chains.py", "aiohttp/")):
        return "RPC"
    if any(part in stack for part in ("sqlalchemy/", "asyncpg/", "(db/")):
        return "database"
    if "strawberry/" in stack or "graphql/" in stack:
        return "GraphQL"
    return "HTTP and the rest"


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


async def submit(client: httpx.AsyncClient, url: str, token: str) -> None:
    variables = {"i": {"to": RECIPIENT, "value": "1000", "password": PASSWORD}}
    data = await graphql.data(client, f"{url}/graphql", SUBMIT, variables, token=token)
    if data["submitTransaction"]["status"] != "QUEUED":
        raise RuntimeError(f"unexpected answer: {data}")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of a process, by thread id."""
    return {
        int(task.name): process_cpu_of(task / "stat")
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


def process_cpu_of(stat: Path) -> float:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def measure(url: str, pid: int, token: str, work: Path) -> tuple[float, float, Counter[str]]:
    """(API CPU seconds per submit, of which the KDF threads', GIL samples per category) over
    SUBMITS submits."""
    samples: Counter[str] = Counter()
    kdf_threads: set[int] = set()
    spy = py_spy()
    raw = work / "submit.spy"
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(WARMUP):
            await submit(client, url, token)
        recorder = None
        if spy is not None:
            recorder = await asyncio.create_subprocess_exec(
                spy, "record", "-p", str(pid), "--threads", "--gil", "--nonblocking", "-r", "400",
                "-f", "raw", "-o", str(raw), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1.0)  # attached
        cpu0, threads0 = process_cpu(pid), thread_cpu(pid)
        for _ in range(SUBMITS):
            await submit(client, url, token)
        cpu = (process_cpu(pid) - cpu0) / SUBMITS
        threads1 = thread_cpu(pid)
    if recorder is not None:
        recorder.send_signal(signal.SIGINT)
        await recorder.wait()
        if raw.exists():
            for line in raw.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                thread = stack.split(";", 1)[0]  # "thread (TID): NAME"
                if thread.startswith("thread (") and ": kdf" in thread:
                    kdf_threads.add(int(thread[8 : thread.index(")")]))
                    continue
                samples[category(stack)] += int(count)
    kdf = sum(threads1.get(t, 0.0) - threads0.get(t, 0.0) for t in kdf_threads) / SUBMITS
    return cpu, kdf, samples


async def main() -> None:
    print(f"{machine()}, {dt.date.today()}")
    print("\nAPI CPU per submitTransaction (anvil, PostgreSQL, no worker) against the KDF.")
    print(f"load average before: {load_average()} (other processes share these cores)")
    params = default_kdf()
    derive_once(params)
    kdf_cpu = statistics.median(derive_once(params)[1] for _ in range(KDF_ROUNDS))
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="submit-cost-", dir=DATA))
    try:
        with bench_postgres() as admin_dsn:
            async with (
                Anvil() as anvil,
                fresh_database(admin_dsn, "walletql_bench") as db_url,
            ):
                data_dir = work / "data"
                env = walletql_env(
                    db_url,
                    data_dir,
                    **BENCH_ENV,
                    WALLETQL_CHAINS=json.dumps([chain_of(anvil)]),
                    WALLETQL_PEPPER=secrets.token_hex(32),
                )
                token = DevSigner(data_dir).mint("submit-cost-user", ttl=3600)
                async with ServerProcess(env, ("serve", "--no-worker")) as api:
                    assert api.proc is not None
                    async with httpx.AsyncClient(timeout=60) as client:
                        created = await graphql.data(
                            client, f"{api.url}/graphql", CREATE_USER, {"p": PASSWORD}, token=token
                        )
                    address = created["createUser"]["wallet"]["address"]
                    await anvil_set_balance(anvil.url, address, 10**21)
                    cpu, kdf_in_api, samples = await measure(api.url, api.proc.pid, token, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {load_average()}")

    total = sum(samples.values())
    rest = cpu - kdf_in_api
    rows: list[list[Any]] = [
        ["KDF (its threads' CPU)", "", f"{kdf_in_api / cpu:.0%}", kdf_in_api * 1000]
    ]
    for name in CATEGORIES[1:]:
        share = samples[name] / total if total else float("nan")
        rows.append([name, samples[name], f"{share * rest / cpu:.0%}", share * rest * 1000])
    rows.append(["all (process CPU from /proc)", total, "100%", cpu * 1000])
    print_table(
        f"API CPU per submit, by part ({SUBMITS} submits one after another; the non-KDF CPU "
        "split by py-spy's samples of the thread holding the GIL)",
        ["part", "GIL samples", "share", "ms per submit"],
        rows,
    )
    over = cpu * 1000 - kdf_cpu * 1000
    verdict = "met" if over <= TARGET_MS else "NOT met"
    print(
        f"\nsubmitTransaction: {cpu * 1000:.1f} ms API CPU per submit "
        f"({kdf_in_api * 1000:.1f} ms of it in the KDF threads); the KDF alone in this process "
        f"(Argon2id m={params.memory_kib} KiB, t={params.iterations}, thread CPU, median of "
        f"{KDF_ROUNDS}) {kdf_cpu * 1000:.1f} ms; API CPU - KDF = {over:.1f} ms "
        f"({cpu / kdf_cpu:.2f}x the KDF); target ≤ KDF + {TARGET_MS:.0f} ms: {verdict}"
    )


async def anvil_set_balance(url: str, address: str, wei: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "anvil_setBalance",
            "params": [address, hex(wei)],
        }
        (await client.post(url, json=body)).raise_for_status()


if __name__ == "__main__":
    run_script(__doc__, main)
