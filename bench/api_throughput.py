"""API throughput: authenticated ``me`` through GraphQL against a bare Starlette endpoint.

One uvicorn worker per server, on the same uvicorn settings (uvloop, httptools, no access log,
no server header). Both answer ``POST /graphql`` for the same user with the same RS256 check
(same dev key, same required claims), the same user + wallet read by ``sub`` and the same JSON:

* ``walletql serve --no-worker`` answering ``{ me { id username wallet { address } } }``;
* the floor, this file in ``--baseline-server`` mode: Starlette + a straight asyncpg pool +
  pyjwt with the key loaded once.

Throughput: wrk (C, one thread: ``make wrk`` installs Debian's package) with 16 keep-alive
connections, rounds alternating between the servers so that noise from other processes hits
both alike; each round's ratio, the median round's figures, and the server's CPU per request.
Every response's body is checked by wrk (status 200 and the wallet address).

Latency: a separate load process (this file in ``--load`` mode: raw asyncio streams on uvloop)
fires requests at fixed arrival times at 70 % of walletql's capacity, latency counted from
each request's scheduled time (no coordinated omission).

    python -m bench.api_throughput            # ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import (
    BENCH_ENV,
    bench_database,
    load_average,
    machine,
    machine_cpu,
    percentile,
    print_table,
    process_cpu,
)
from testkit import ROOT, graphql
from testkit.env import walletql_env
from testkit.net import free_port, wait_http
from testkit.postgres import asyncpg_dsn
from testkit.process import ServerProcess, stop_process

SUB = "bench-api-user"
PASSWORD = "correct horse battery"  # noqa: S105 - a benchmark user's password
USERNAME = "bench_user"
ME_QUERY = "{ me { id username wallet { address } } }"
CREATE_USER = (
    'mutation { createUser(input: {password: "%s", username: "%s"}) { id wallet { address } } }'
)

WARMUP_SECONDS = 2.0
WRK_SECONDS = 3.0
WRK_ROUNDS = 9
WRK_CONNECTIONS = 16
OPEN_CONNECTIONS = 64
COMMON_SECONDS = 5.0
COMMON_FRACTION = 0.7
SLO_P99_MS = 100.0
SUSTAINED_SHARE = 0.97
DRAIN_SECONDS = 2.0
TARGET_RATIO = 0.5


# --------------------------------------------------------------------------------------------
# The raw HTTP/1.1 client (used by the load process and by bench.signing)
# --------------------------------------------------------------------------------------------


def build_request(url: str, body: bytes, token: str, path: str = "/graphql") -> bytes:
    host = url.split("://", 1)[1].rstrip("/")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class RawConnection:
    """One keep-alive HTTP/1.1 connection, one request in flight, Content-Length bodies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"response without Content-Length: {head!r}")
        end = lowered.index(b"\r\n", at + 2)
        body = await self.reader.readexactly(int(lowered[at + 17 : end]))
        return status, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


# --------------------------------------------------------------------------------------------
# The load process
# --------------------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    url: str
    token: str
    expect: str  # a substring every good response body contains
    mode: str  # "open": requests at fixed arrival times
    seconds: float
    connections: int
    rate: float = 0.0


def _result(
    spec: LoadSpec,
    latencies: list[float],
    errors: int,
    started: float,
    finished: float,
    cpu: float,
    wall: float,
    unfinished: int = 0,
) -> dict[str, Any]:
    elapsed = max(finished - started, 1e-9)
    return {
        "mode": spec.mode,
        "offered": spec.rate,
        "completed": len(latencies),
        "errors": errors,
        "unfinished": unfinished,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "client_cpu": cpu / max(wall, 1e-9),
        "latencies_ms": [round(x * 1000, 3) for x in latencies],  # for pooling over rounds
    }


async def _open(spec: LoadSpec, conns: list[RawConnection], request: bytes) -> dict[str, Any]:
    """Request i is due at start + i/rate. Whichever connection is free claims the next
    request, waits for its due time if it is early, and sends it; latency is measured from
    the due time, so waiting for a free connection counts (no coordinated omission)."""
    clock = time.perf_counter
    expect = spec.expect.encode()
    latencies: list[float] = []
    errors = 0
    total = int(spec.rate * spec.seconds)
    interval = 1.0 / spec.rate
    claimed = 0
    cpu0 = time.process_time()
    start = clock() + 0.05
    last_done = start

    async def run(conn: RawConnection) -> None:
        nonlocal errors, last_done, claimed
        while claimed < total:
            due = start + claimed * interval
            claimed += 1
            if (early := due - clock()) > 0:
                await asyncio.sleep(early)
            status, body = await conn.send(request)
            last_done = clock()
            if status != 200 or expect not in body:
                errors += 1
            latencies.append(last_done - due)

    workers = [asyncio.create_task(run(c)) for c in conns]
    _, pending = await asyncio.wait(workers, timeout=spec.seconds + DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    end = clock() if pending else last_done
    unfinished = total - len(latencies)
    cpu = time.process_time() - cpu0
    return _result(spec, latencies, errors, start, end, cpu, end - start, unfinished)


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    request = build_request(spec.url, json.dumps({"query": ME_QUERY}).encode(), spec.token)
    conns = [await RawConnection.open(spec.url) for _ in range(spec.connections)]
    try:
        return await _open(spec, conns, request)
    finally:
        await asyncio.gather(*(c.close() for c in conns))


def load_main(raw: str) -> None:
    spec = LoadSpec(**json.loads(raw))
    try:
        import uvloop

        result = uvloop.run(run_load(spec))
    except ImportError:
        result = asyncio.run(run_load(spec))
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# The baseline server: Starlette + asyncpg + pyjwt, no GraphQL, no ORM
# --------------------------------------------------------------------------------------------

PROFILE_SQL = (
    "SELECT users.id, users.sub, users.username, wallets.address, users.created_at "
    "FROM users LEFT OUTER JOIN wallets ON wallets.user_id = users.id WHERE users.sub = $1"
)


def baseline_app(dsn: str, data_dir: Path, pool_size: int) -> Any:
    import asyncpg
    import jwt
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from walletql.devauth import DEV_AUDIENCE, DEV_ISSUER, DevSigner
    from walletql.settings import Settings

    defaults = Settings.model_fields
    algorithms: list[str] = defaults["jwt_algorithms"].default
    leeway: int = defaults["jwt_leeway_seconds"].default
    document = DevSigner(data_dir).jwks()
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(document).keys}  # loaded once
    required = ["exp", "iat", "sub", "iss", "aud"]
    pool: asyncpg.Pool | None = None

    def unauthenticated(message: str) -> JSONResponse:
        return JSONResponse({"errors": [{"message": message}]}, status_code=401)

    async def me(request: Request) -> JSONResponse:
        json.loads(await request.body())  # GraphQL parses its body too
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return unauthenticated("expected 'Bearer <token>'")
        try:
            header = jwt.get_unverified_header(token)
            key = keys.get(header.get("kid"))
            if header.get("alg") not in algorithms or key is None:
                return unauthenticated("bad token header")
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                issuer=DEV_ISSUER,
                audience=DEV_AUDIENCE,
                leeway=leeway,
                options={"require": required, "verify_aud": True},
            )
        except jwt.PyJWTError as exc:
            return unauthenticated(f"invalid token: {exc}")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            return unauthenticated("token has no subject")
        assert pool is not None
        row = await pool.fetchrow(PROFILE_SQL, sub)
        if row is None:
            return JSONResponse({"data": {"me": None}})
        wallet = {"address": row["address"]} if row["address"] else None
        me = {"id": str(row["id"]), "username": row["username"], "wallet": wallet}
        return JSONResponse({"data": {"me": me}})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        try:
            yield
        finally:
            await pool.close()

    routes = [
        Route("/graphql", me, methods=["POST"]),
        Route("/healthz", lambda _: JSONResponse({"ok": True})),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def baseline_main(port: int, dsn: str, data_dir: Path, pool_size: int) -> None:
    from bench.floor_server import serve

    serve(baseline_app(dsn, data_dir, pool_size), port)


# --------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    pid: int
    expect: str


@dataclass
class Step:
    target: str
    label: str
    result: dict[str, Any]
    server_cpu: float
    machine_cpu: float

    @property
    def sustainable(self) -> bool:
        r = self.result
        return bool(
            r["unfinished"] == 0
            and r["errors"] == 0
            and r["rps"] >= SUSTAINED_SHARE * r["offered"]
            and r["p99_ms"] <= SLO_P99_MS
        )


async def run_step(target: Target, token: str, label: str, spec: dict[str, Any]) -> Step:
    payload = json.dumps({"url": target.url, "token": token, "expect": target.expect, **spec})
    server0, (busy0, total0) = process_cpu(target.pid), machine_cpu()
    wall0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api_throughput", "--load", payload,
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=spec["seconds"] + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"load process failed ({proc.returncode}) at {target.name} {label}")
    wall = time.perf_counter() - wall0
    busy1, total1 = machine_cpu()
    # The server's CPU over the whole step (load process start-up included: a slight undercount).
    server = (process_cpu(target.pid) - server0) / wall
    machine_share = (busy1 - busy0) / max(total1 - total0, 1.0) * (os.cpu_count() or 1)
    return Step(target.name, label, json.loads(out), server, machine_share)


@contextlib.asynccontextmanager
async def baseline_server(database_url: str, data_dir: Path) -> AsyncIterator[Target]:
    port = free_port()
    dsn = asyncpg_dsn(database_url)
    from walletql.settings import Settings

    pool_size = str(Settings.model_fields["database_pool_size"].default)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api_throughput", "--baseline-server", str(port), dsn,
        str(data_dir), pool_size, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_http(f"{url}/healthz", proc)
        yield Target("bare Starlette + asyncpg", url, proc.pid, "")
    finally:
        await stop_process(proc, timeout=20, strict=False)


async def create_user(url: str, token: str) -> str:
    """Create the user and wallet; returns the wallet address."""
    import httpx

    async with httpx.AsyncClient(timeout=60) as client:
        data = await graphql.data(
            client, f"{url}/graphql", CREATE_USER % (PASSWORD, USERNAME), token=token
        )
    return str(data["createUser"]["wallet"]["address"])


async def check_same_answer(targets: Sequence[Target], token: str) -> None:
    """Both servers must return the same body for the same request."""
    bodies = []
    for target in targets:
        request = build_request(target.url, json.dumps({"query": ME_QUERY}).encode(), token)
        conn = await RawConnection.open(target.url)
        try:
            status, body = await conn.send(request)
        finally:
            await conn.close()
        if status != 200:
            raise RuntimeError(f"{target.name} answered {status}: {body!r}")
        bodies.append(json.loads(body))
    if bodies[0] != bodies[1]:
        raise RuntimeError(f"the servers disagree: {bodies}")


def open_spec(rate: int, seconds: float) -> dict[str, Any]:
    return {"mode": "open", "seconds": seconds, "connections": OPEN_CONNECTIONS, "rate": rate}


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------

# Every response is checked (status 200, the expected text in the body); done() prints one
# JSON line. One wrk thread: its counters live in that thread's Lua state.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(authorization)s
local expect = %(expect)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do wrong = wrong + thread:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "wrong": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, wrong,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


@dataclass
class WrkRun:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    wrong: int
    server_cpu_ms: float  # server CPU per request
    load: str


async def run_wrk(target: Target, token: str, seconds: float, script_dir: Path) -> WrkRun:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run `make wrk` (Debian's package, as root)")
    script = script_dir / "me.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "body": lua_string(json.dumps({"query": ME_QUERY})),
            "authorization": lua_string(f"Bearer {token}"),
            "expect": lua_string(target.expect),
        }
    )
    cpu0 = process_cpu(target.pid)
    proc = await asyncio.create_subprocess_exec(
        wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "-s", str(script),
        f"{target.url}/graphql", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    cpu = process_cpu(target.pid) - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    requests = max(int(result["requests"]), 1)
    return WrkRun(
        target.name,
        requests / (result["duration_us"] / 1e6),
        result["p50_us"] / 1000,
        result["p99_us"] / 1000,
        int(result["wrong"]) + int(result["socket_errors"]),
        cpu / requests * 1000,
        load_average(),
    )


async def wrk_rounds(
    targets: Sequence[Target], token: str, script_dir: Path
) -> dict[str, list[WrkRun]]:
    """A warm-up each, then WRK_ROUNDS rounds alternating between the servers."""
    for target in targets:
        await run_wrk(target, token, WARMUP_SECONDS, script_dir)
    runs: dict[str, list[WrkRun]] = {t.name: [] for t in targets}
    for _ in range(WRK_ROUNDS):
        for target in targets:
            runs[target.name].append(await run_wrk(target, token, WRK_SECONDS, script_dir))
    return runs


def median_run(runs: Sequence[WrkRun]) -> WrkRun:
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


async def main() -> None:
    print(f"{machine()}, {dt.date.today()}")
    print(f"\nAuthenticated `{ME_QUERY}` via GraphQL against a bare Starlette + asyncpg floor.")
    print(f"load average before: {load_average()} (other processes share these cores)")
    async with bench_database("api") as (url, data_dir):
        await run_all(url, data_dir)


async def run_all(url: str, data_dir: Path) -> None:
    from walletql.devauth import DevSigner

    env = walletql_env(url, data_dir, **BENCH_ENV)
    token = DevSigner(data_dir).mint(SUB, ttl=3600)
    async with (
        ServerProcess(env, ("serve", "--no-worker")) as server,
        baseline_server(url, data_dir) as bare,
    ):
        address = await create_user(server.url, token)
        walletql = Target("GraphQL (walletql)", server.url, server.pid, address)
        bare.expect = address
        targets = [walletql, bare]
        await check_same_answer(targets, token)
        runs = await wrk_rounds(targets, token, data_dir)
        capacity = median_run(runs[walletql.name]).rps
        common = round(COMMON_FRACTION * capacity)
        steps = [
            await run_step(t, token, f"open {common}/s", open_spec(common, COMMON_SECONDS))
            for t in targets
        ]
    print(f"load average after: {load_average()}")

    rows = []
    for round_no in range(WRK_ROUNDS):
        g, b = runs[walletql.name][round_no], runs[bare.name][round_no]
        for run in (g, b):
            rows.append(
                [
                    round_no + 1,
                    run.target,
                    round(run.rps),
                    run.p50_ms,
                    run.p99_ms,
                    run.wrong,
                    run.server_cpu_ms,
                    run.load,
                    f"{g.rps / b.rps:.2f}x" if run is g else "",
                ]
            )
    print_table(
        f"wrk -t1 -c{WRK_CONNECTIONS} -d{WRK_SECONDS:g}s, rounds alternating between the servers",
        [
            "round",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "wrong or failed",
            "server CPU ms/req",
            "load average",
            "GraphQL / floor",
        ],
        rows,
    )
    print_table(
        f"Latency at a fixed rate ({common}/s = {COMMON_FRACTION:.0%} of walletql's median "
        "wrk rate; open model: latency from each request's scheduled send time)",
        ["server", "req/s", "p50 ms", "p99 ms", "errors+lost", "sustained", "server CPU ms/req"],
        [
            [
                step.target,
                round(step.result["rps"]),
                step.result["p50_ms"],
                step.result["p99_ms"],
                step.result["errors"] + step.result["unfinished"],
                "yes" if step.sustainable else "no",
                step.server_cpu / max(step.result["rps"], 1e-9) * 1000,
            ]
            for step in steps
        ],
    )
    g_med, b_med = median_run(runs[walletql.name]), median_run(runs[bare.name])
    ratios = sorted(
        g.rps / b.rps for g, b in zip(runs[walletql.name], runs[bare.name], strict=True)
    )
    ratio = ratios[len(ratios) // 2]
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"\nGraphQL / floor: {ratio:.2f}x (median of {WRK_ROUNDS} same-round ratios: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); walletql {g_med.rps:,.0f} req/s at "
        f"{g_med.server_cpu_ms:.2f} ms CPU/req, floor {b_med.rps:,.0f} req/s at "
        f"{b_med.server_cpu_ms:.2f} ms CPU/req (CPU per request: floor / walletql "
        f"{b_med.server_cpu_ms / g_med.server_cpu_ms:.2f}x); target ≥ {TARGET_RATIO:.2f}x: {met}"
    )


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", metavar="JSON", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-server", nargs=4, metavar="ARG", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)  # `python -m bench` passes its arguments on
    if args.load:
        load_main(args.load)
    elif args.baseline_server:
        port, dsn, data_dir, pool_size = args.baseline_server
        baseline_main(int(port), dsn, Path(data_dir), int(pool_size))
    else:
        asyncio.run(main())


if __name__ == "__main__":
    cli()
