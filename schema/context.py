"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from schema.loaders import Loaders
from services.auth import Principal
from services.container import Services
from services.errors import Unauthenticated
from services.records import UnitOfWork
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
    # Read-only for queries and subscriptions; a mutation swaps in its own for its duration
    # (schema/unit_of_work.py).
    uow: UnitOfWork = field(init=False)

    _loaders: Loaders | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.uow = self.services.units.read_only()

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders of the current scope (built on first use: most requests need none)."""
        if self._loaders is None:
            queries, units = self.services.transaction_queries, self.services.units
            self._loaders = Loaders(queries, units.read_only())
        return self._loaders

    def new_scope(self) -> None:
        """Forget what the loaders read: an operation, a mutation field's result and each
        pushed item read afresh (schema/loaders.py)."""
        self._loaders = None

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


Info = StrawberryInfo[Context, None]

__all__ = ["Context", "Info", "Unauthenticated"]
