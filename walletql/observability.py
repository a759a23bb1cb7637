"""Operations endpoints: ``/metrics`` (Prometheus) and ``/readyz``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services import metrics
from services.hub import EventSource


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format: this process's instruments only."""
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


@dataclass
class Readiness:
    """Ready while the database answers and this process's LISTEN connection is up. Chains
    are left out on purpose: a chain outage fails chain calls, not the whole API."""

    engine: AsyncEngine
    listener: EventSource | None
    timeout: float = 2.0

    async def database_ok(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def check(self) -> dict[str, bool]:
        database = await self.database_ok()
        listener = self.listener is None or self.listener.listening
        return {"ready": database and listener, "database": database, "listener": listener}


async def readyz(request: Request) -> Response:
    """200 when this process can serve, 503 (with what is down) when it cannot."""
    readiness: Readiness = request.state.readiness
    result = await readiness.check()
    return JSONResponse(result, status_code=200 if result["ready"] else 503)
