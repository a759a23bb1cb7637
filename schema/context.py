"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from db.engine import UnitOfWork, read_only, unit_of_work
from services.auth import Principal
from services.container import Services
from services.errors import Unauthenticated
from services.request_context import request_id


@dataclass
class Context:
    services: Services
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    # The HTTP request's id (the access log line's), so an INTERNAL error can be found.
    request_id: str = field(default_factory=request_id)
    # Set by strawberry from the graphql-transport-ws connection_init payload.
    connection_params: dict[str, Any] | None = None
    _principal: Principal | None = None

    def _authorization(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("authorization") or self.connection_params.get(
                "Authorization"
            )
            return value if isinstance(value, str) else None
        return self.request.headers.get("authorization")

    async def principal(self) -> Principal:
        """The verified caller; raises UNAUTHENTICATED without a valid bearer token."""
        if self._principal is None:
            self._principal = await self.services.verifier.verify_header(self._authorization())
        return self._principal

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One database transaction (mutations)."""
        return unit_of_work(self.services.session_factory)

    def read(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Reads in autocommit, one round trip per statement (queries)."""
        return read_only(self.services.read_session_factory)


Info = StrawberryInfo[Context, None]

__all__ = ["Context", "Info", "Unauthenticated"]
