"""Which browser origins may call the API: one list for HTTP (CORS) and the websocket."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# Pages served by local dev servers (Vite, Next, CRA…) on any port.
DEV_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")

# What a browser client sends beyond the CORS-safelisted headers: the bearer token, a JSON
# content type, and the headers Apollo Client adds (client awareness, CSRF-prevention flag).
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)
PREFLIGHT_MAX_AGE_SECONDS = 600

_ORIGIN = re.compile(r"^(https?)://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d+|\*))?$")


def _pattern(origin: str) -> str:
    """A regex for one configured origin; ``:*`` stands for any port."""
    match = _ORIGIN.match(origin.strip().lower().rstrip("/"))
    if match is None:
        raise ValueError(
            f"WALLETQL_ALLOWED_ORIGINS: {origin!r} is not an origin like "
            "https://app.example or http://localhost:*"
        )
    scheme, host, port = match.groups()
    if port == "*":
        return rf"{scheme}://{re.escape(host)}(?::\d+)?"
    default = {"http": "80", "https": "443"}[scheme]
    if port is None or port == default:
        return rf"{scheme}://{re.escape(host)}(?::{default})?"
    return rf"{scheme}://{re.escape(host)}:{port}"


class OriginPolicy:
    """Configured origins, exact or with a ``:*`` port wildcard, or ``*`` for any."""

    def __init__(self, origins: Sequence[str]) -> None:
        self.any = "*" in origins
        patterns = [_pattern(o) for o in origins if o != "*"]
        # Starlette's CORS middleware matches with fullmatch; so does allows().
        self.regex: str | None = "|".join(f"(?:{p})" for p in patterns) or None
        self._compiled = re.compile(self.regex) if self.regex else None

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        return self._compiled is not None and bool(self._compiled.fullmatch(origin.lower()))

    def cors(self, app: ASGIApp, *, credentials: bool) -> ASGIApp:
        """CORS for HTTP: preflights with the headers a GraphQL browser client sends."""
        from starlette.middleware.cors import CORSMiddleware  # settings load without starlette

        return CORSMiddleware(
            app,
            allow_origins=["*"] if self.any else [],
            allow_origin_regex=self.regex,
            allow_methods=["GET", "POST"],
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=credentials,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
