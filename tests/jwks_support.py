"""An identity provider for tests: RSA keys it generates, Dynamic-shaped tokens (``iss``,
``aud``, ``scope: user:basic``), and its JWKS served over real HTTP."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ISSUER = "https://auth.example"
AUDIENCE = "walletql-app"


@dataclass
class Issuer:
    """An identity provider: signs tokens and publishes its keys at a JWKS URL."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0
    down: bool = False

    def add_key(self, kid: str, *, publish: bool = True) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "scope": "user:basic",
            "iat": now, "exp": now + 600,
        }  # fmt: skip
        body.update(claims)
        return jwt.encode(body, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    async def jwks(self, request: Request) -> JSONResponse:
        self.fetches += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        keys = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return JSONResponse({"keys": keys})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/.well-known/jwks.json", self.jwks)])
