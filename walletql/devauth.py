"""Embedded-default secrets: a local RS256 signing key and the pepper, kept in the data dir."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_ISSUER = "walletql-dev"
DEV_AUDIENCE = "walletql"
DEV_SCOPE = "user:basic"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_pepper(data_dir: Path) -> bytes:
    path = data_dir / "pepper"
    if not path.exists():
        _write_private(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()


class DevSigner:
    """Signs dev tokens with a key generated once into ``<data_dir>/jwt-dev-key.pem``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        path = data_dir / "jwt-dev-key.pem"
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            with contextlib.suppress(FileExistsError):  # another process won the race
                _write_private(path, pem)
        # Our own key, written 0600 into the private data directory: the RSA consistency
        # checks (a large share of an API start) guard against keys from elsewhere.
        loaded = serialization.load_pem_private_key(
            path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA key")
        self._key = loaded
        public_jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(loaded.public_key())
        )
        self.kid = jwt.PyJWK(public_jwk).key_id or _thumbprint(public_jwk)
        self._public_jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    def mint(self, sub: str, ttl: int = 3600, **claims: Any) -> str:
        """A token that the embedded server accepts, for user ``sub``."""
        now = int(time.time())
        payload = {
            "sub": sub,
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            "scope": DEV_SCOPE,
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid})


def _thumbprint(jwk: dict[str, Any]) -> str:
    import base64
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
