"""JWT verification against a JWKS: pinned algorithms, required claims, cached keys."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from services import metrics
from services.errors import Unauthenticated

log = logging.getLogger(__name__)

MAX_SUB = 255
JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Principal:
    """The caller, as named by a verified token."""

    sub: str
    issued_at: int
    expires_at: int
    scopes: frozenset[str]


class JwksCache:
    """Keys by ``kid``. Refreshes after ``ttl``; keeps the last good set when a fetch fails;
    refetches for an unknown ``kid`` at most once per ``min_refetch`` seconds."""

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        ttl: float = 300,
        min_refetch: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_refetch:
                return
            self._last_attempt = now
            try:
                document = await self._fetch()
                keys = jwt.PyJWKSet.from_dict(document).keys
            except Exception as exc:  # keep serving with the last good set
                metrics.JWKS_FETCH_FAILURES.inc()
                log.warning("JWKS fetch failed, keeping %d cached keys: %s", len(self._keys), exc)
                return
            self._keys = {key.key_id: key for key in keys if key.key_id}
            self._fetched_at = now

    async def get(self, kid: str) -> jwt.PyJWK | None:
        stale = self._fetched_at is None or self._clock() - self._fetched_at > self._ttl
        if stale or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)


def http_jwks_fetcher(url: str, timeout: float) -> JwksFetcher:
    """Fetch a JWKS over HTTP without blocking the event loop."""
    import httpx

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            document: dict[str, Any] = json.loads(response.content)
            return document

    return fetch


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    key: jwt.PyJWK


class TokenVerifier:
    """Verifies bearer tokens. A token that verified is remembered (``cache_size`` tokens at
    most, least recently used out first) until its ``exp`` + leeway, and only while the key
    that signed it is still the one the JWKS names: a client sends the same token with every
    request, and an RS256 check costs more than the rest of a small query."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        algorithms: list[str],
        issuer: str | None,
        audience: str | None,
        required_scope: str | None,
        leeway: int,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jwks = jwks
        self._algorithms = algorithms
        self._issuer = issuer
        self._audience = audience
        self._required_scope = required_scope
        self._leeway = leeway
        self._cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """Return the caller of a valid token; raise Unauthenticated otherwise."""
        hit = self._verified.get(token)
        if hit is not None:
            if self._clock() < hit.principal.expires_at + self._leeway and (
                await self._jwks.get(hit.kid) is hit.key
            ):
                if token in self._verified:  # another request may have pushed it out meanwhile
                    self._verified.move_to_end(token)
                return hit.principal
            self._verified.pop(token, None)  # expired, or its key rotated: check it afresh
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated("token algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("token has no key id")
        key = await self._jwks.get(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        required = ["exp", "iat", "sub"]
        if self._issuer:
            required.append("iss")
        if self._audience:
            required.append("aud")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": required, "verify_aud": bool(self._audience)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("token has no subject")
        # The subject is stored (users.sub is VARCHAR(255)) and looked up: bounded, valid text.
        if len(sub) > MAX_SUB or "\x00" in sub or not _encodes(sub):
            raise Unauthenticated(f"token subject must be text of at most {MAX_SUB} characters")
        scopes = _scopes(claims)
        if self._required_scope and self._required_scope not in scopes:
            raise Unauthenticated(f"token lacks scope {self._required_scope}")
        principal = Principal(sub, int(claims["iat"]), int(claims["exp"]), scopes)
        if self._cache_size:
            self._verified[token] = _Verified(principal, kid, key)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    async def verify_header(self, authorization: str | None) -> Principal:
        """Verify an ``Authorization: Bearer …`` value."""
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("expected 'Bearer <token>'")
        return await self.verify(token.strip())


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for name in ("scope", "scopes", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(str(item) for item in value)
    return frozenset(found)
