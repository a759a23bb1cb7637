"""The ASGI app: routes, the API runtime in the lifespan, the access log."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from db.url import DatabaseUrl, as_database_url
from services.container import Services
from walletql.access_log import AccessLog
from walletql.api_runtime import start_api
from walletql.body_limit import BodyLimit
from walletql.devauth import DevSigner
from walletql.graphql_view import GraphQLView
from walletql.observability import Readiness, metrics_endpoint, readyz
from walletql.recursion import pin_recursion_limit
from walletql.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWITCH_INTERVAL_SECONDS = 0.001


class State(TypedDict):
    services: Services
    readiness: Readiness


def create_app(
    settings: Settings,
    database_url: DatabaseUrl | str | None = None,
    *,
    run_worker: bool = False,
    signer: DevSigner | None = None,
) -> Starlette:
    """The ASGI app. ``database_url`` overrides the setting (the embedded server's URL);
    ``run_worker`` runs the queue worker and the sweeper inside this process; ``signer`` is
    the dev key when the caller has loaded it already."""
    url = as_database_url(database_url) if database_url is not None else settings.database
    if url is None:
        raise ValueError("create_app needs a database URL; the CLI starts the embedded one")
    if missing := settings.missing_for_api():
        raise ValueError(f"WALLETQL_ENV=production: the API needs {', '.join(missing)}")

    pin_recursion_limit()
    # The dev key is read once: it signs nothing here, but verifies tokens and is published.
    if not settings.dev_auth:
        signer = None
    elif signer is None:
        signer = DevSigner(settings.data_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        runtime = await start_api(settings, url, signer)
        await runtime.listen(url)
        stop = asyncio.Event()
        worker = asyncio.create_task(runtime.core.run_worker(stop)) if run_worker else None
        gc.collect()
        gc.freeze()  # start-up objects never die: keep them out of every GC pass
        # CPU-bound Python in threads (signing, the fee ladder) hands the interpreter
        # back to the event loop within 1 ms instead of 5: a query waits less behind them.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        try:
            yield {
                "services": runtime.services,
                "readiness": Readiness(runtime.core.engine, runtime.listener),
            }
        finally:
            stop.set()
            if worker is not None:
                await worker
            await runtime.close()

    view = GraphQLView(settings)
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/graphql", view, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", view),
        Route("/healthz", lambda _: JSONResponse({"ok": True})),  # liveness: the loop runs
        Route("/readyz", readyz),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_endpoint))
    if settings.env == "dev":
        from walletql.devroutes import faucet

        routes.append(Route("/dev/faucet", faucet, methods=["POST"]))
    if settings.dev_auth:
        assert signer is not None
        signer_jwks = signer.jwks()
        routes.append(Route("/.well-known/jwks.json", lambda _: JSONResponse(signer_jwks)))
    if settings.graphiql_enabled:
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
        # A browser pointed at the server's root lands in GraphiQL, with its ?token= kept.
        routes.append(Route("/", _to_graphiql))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_read_timeout_seconds
    )
    app.add_middleware(view.origins.cors, credentials=settings.cors_allow_credentials)
    app.add_middleware(AccessLog)
    return app


async def _to_graphiql(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/graphql{query}", status_code=307)
