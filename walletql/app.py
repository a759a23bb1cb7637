"""The composition root: builds every process resource once and wires the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from db.engine import create_engine, create_read_session_factory, create_session_factory
from schema import build_schema
from schema.context import Context
from services.auth import JwksCache, JwksFetcher, TokenVerifier, http_jwks_fetcher
from services.chains import ChainConfig, Chains
from services.container import Services
from services.errors import Unauthenticated
from services.faucet import Faucet
from services.hub import EventHub, EventSource
from services.keys import KdfParams, KeyVault
from services.listener import PostgresListener
from services.live import LiveService
from services.passwords import PasswordGuard
from services.pipeline import TransactionProcessor
from services.queues import Queue
from services.transactions import TransactionService
from services.users import UserService
from services.wallets import WalletService
from walletql.devauth import DEV_AUDIENCE, DEV_ISSUER, DevSigner, load_or_create_pepper
from walletql.settings import Settings
from worker.runner import Worker, WorkerSettings
from worker.sweeper import Sweeper

log = logging.getLogger("walletql")
access_log = logging.getLogger("walletql.access")

STATIC_DIR = Path(__file__).resolve().parent / "static"


class State(TypedDict):
    services: Services


@dataclass
class Runtime:
    """Process resources that outlive requests; closed in reverse order on shutdown."""

    services: Services
    processor: TransactionProcessor
    queue: Queue
    hub: EventHub
    closers: list[Any]

    async def listen(self, database_url: str) -> None:
        """Start this process's event listener (API processes only)."""
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        listener: EventSource = PostgresListener(dsn, self.hub)
        await listener.start()
        self.closers.append(listener.close)

    def worker(self, settings: Settings) -> Worker:
        return Worker(
            self.queue,
            self.processor,
            WorkerSettings(
                concurrency=settings.worker_concurrency,
                visibility_timeout=settings.queue_visibility_timeout_seconds,
                max_receives=settings.queue_max_receives,
                wait_seconds=settings.queue_wait_seconds,
            ),
        )

    def sweeper(self, settings: Settings) -> Sweeper:
        return Sweeper(
            self.services.session_factory, self.queue, grace_seconds=settings.sweeper_grace_seconds
        )

    async def run_worker(self, settings: Settings, stop: asyncio.Event) -> None:
        """The worker and the sweeper, until ``stop`` is set."""
        await asyncio.gather(
            self.worker(settings).run(stop),
            self.sweeper(settings).run(stop, settings.sweeper_interval_seconds),
        )


def build_queue(settings: Settings, engine: AsyncEngine) -> Queue:
    if settings.queue_backend == "sqs":
        from services.queues.sqs import SqsQueue

        assert settings.sqs_queue_url
        return SqsQueue(
            settings.sqs_queue_url,
            region=settings.sqs_region,
            endpoint_url=settings.sqs_endpoint_url,
            dead_letter_url=settings.sqs_dead_letter_url,
        )
    from services.queues.postgres import PostgresQueue

    return PostgresQueue(engine, settings.queue_name)


def build_verifier(settings: Settings, signer: DevSigner | None) -> TokenVerifier:
    if signer is not None:
        document = signer.jwks()

        async def local_jwks() -> dict[str, Any]:
            return document

        fetch: JwksFetcher = local_jwks
        issuer: str | None
        audience: str | None
        issuer, audience = settings.jwt_issuer or DEV_ISSUER, settings.jwt_audience or DEV_AUDIENCE
    else:
        assert settings.jwks_url
        fetch = http_jwks_fetcher(settings.jwks_url, settings.jwks_timeout_seconds)
        issuer, audience = settings.jwt_issuer, settings.jwt_audience
    cache = JwksCache(
        fetch, ttl=settings.jwks_cache_seconds, min_refetch=settings.jwks_min_refetch_seconds
    )
    return TokenVerifier(
        cache,
        algorithms=settings.jwt_algorithms,
        issuer=issuer,
        audience=audience,
        required_scope=settings.jwt_required_scope,
        leeway=settings.jwt_leeway_seconds,
    )


def load_pepper(settings: Settings) -> bytes:
    if settings.pepper is not None:
        return settings.pepper.get_secret_value().encode()
    return load_or_create_pepper(settings.data_dir)


async def start_runtime(
    settings: Settings, database_url: str, signer: DevSigner | None = None
) -> Runtime:
    """Build services for one process. ``database_url`` is already resolved."""
    engine = create_engine(database_url, pool_size=settings.database_pool_size)
    if signer is None and settings.dev_auth:
        signer = DevSigner(settings.data_dir)
    vault = KeyVault(
        load_pepper(settings),
        KdfParams(settings.kdf_memory_kib, settings.kdf_iterations, settings.kdf_lanes),
        concurrency=settings.kdf_concurrency,
    )
    sessions = create_session_factory(engine)
    chains = Chains(
        [ChainConfig(**c.model_dump()) for c in settings.chains], settings.chain_timeout_seconds
    )
    faucet = Faucet(chains, settings.faucet_wei) if settings.env == "dev" else None
    guard = PasswordGuard(
        sessions,
        max_failures=settings.password_max_failures,
        window_seconds=settings.password_failure_window_seconds,
    )
    queue = build_queue(settings, engine)
    processor = TransactionProcessor(
        sessions, chains, check_interval=settings.worker_check_interval_seconds
    )
    reads = create_read_session_factory(engine)
    wallets = WalletService(vault, guard, chains, reads, settings.export_max_token_age_seconds)
    transactions = TransactionService(
        wallets, chains, queue, processor, bump_rungs=settings.fee_bump_rungs
    )
    hub = EventHub(settings.subscriber_buffer)
    services = Services(
        session_factory=sessions,
        read_session_factory=reads,
        verifier=build_verifier(settings, signer),
        vault=vault,
        users=UserService(vault, on_wallet_created=faucet.fund_new_wallet if faucet else None),
        chains=chains,
        wallets=wallets,
        faucet=faucet,
        transactions=transactions,
        live=LiveService(sessions, hub, transactions),
    )
    return Runtime(
        services,
        processor,
        queue,
        hub,
        closers=[engine.dispose, vault.close, chains.close, queue.close],
    )


async def stop_runtime(runtime: Runtime) -> None:
    for close in reversed(runtime.closers):
        result = close()
        if asyncio.iscoroutine(result):
            await result


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
                introspection=settings.introspection_enabled,
            ),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            subscription_protocols=("graphql-transport-ws",),
            allowed_origins=settings.allowed_origins,
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(services=request.state.services, request=request, response=response)

    async def on_ws_connect(self, context: Context) -> None:
        try:
            principal = await context.principal()
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from exc
        socket = context.request
        assert isinstance(socket, WebSocket)

        async def close_on_expiry() -> None:
            with contextlib.suppress(Exception):
                await socket.close(code=4403, reason="Token expired")

        delay = max(0.0, principal.expires_at - time.time())
        socket.state.expiry = asyncio.get_running_loop().call_later(
            delay, lambda: asyncio.ensure_future(close_on_expiry())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        socket = WebSocket(scope, receive=receive, send=send)
        try:
            await self.run(socket)
        finally:
            expiry = getattr(socket.state, "expiry", None)
            if expiry is not None:
                expiry.cancel()

    async def render_graphql_ide(self, request: Request) -> Response:
        from walletql.graphiql import graphiql_html

        return HTMLResponse(graphiql_html())


class AccessLog:
    """One line per HTTP request: method, path (never the query string), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed)


def create_app(
    settings: Settings, database_url: str | None = None, *, run_worker: bool = False
) -> Starlette:
    """The ASGI app. ``database_url`` overrides the setting (the embedded server's URL);
    ``run_worker`` runs the queue worker and the sweeper inside this process."""
    url = database_url or (
        settings.database_url.get_secret_value() if settings.database_url else ""
    )
    if not url:
        raise ValueError("create_app needs a database URL; the CLI starts the embedded one")

    # The dev key is read once: it signs nothing here, but verifies tokens and is published.
    signer = DevSigner(settings.data_dir) if settings.dev_auth else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        runtime = await start_runtime(settings, url, signer)
        await runtime.listen(url)
        stop = asyncio.Event()
        worker = asyncio.create_task(runtime.run_worker(settings, stop)) if run_worker else None
        gc.collect()
        gc.freeze()  # start-up objects never die: keep them out of every GC pass
        try:
            yield {"services": runtime.services}
        finally:
            stop.set()
            if worker is not None:
                await worker
            await stop_runtime(runtime)

    view = GraphQLView(settings)
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/graphql", view, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", view),
        Route("/healthz", lambda _: JSONResponse({"ok": True})),
    ]
    if settings.env == "dev":
        from walletql.devroutes import faucet

        routes.append(Route("/dev/faucet", faucet, methods=["POST"]))
    if settings.dev_auth:
        assert signer is not None
        signer_jwks = signer.jwks()
        routes.append(Route("/.well-known/jwks.json", lambda _: JSONResponse(signer_jwks)))
    if settings.graphiql_enabled:
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(AccessLog)
    return app
