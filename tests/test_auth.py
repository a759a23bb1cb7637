"""JWT verification through HTTP: attacks fail with UNAUTHENTICATED, rotation works."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth import JwksCache, TokenVerifier
from services.errors import Unauthenticated
from testkit.env import make_settings
from testkit.graphql import error_codes
from testkit.server import LiveServer
from tests.jwks_support import Issuer
from walletql.app import create_app
from walletql.devauth import DEV_AUDIENCE, DEV_ISSUER, DevSigner

ME = "{ me { id } }"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "mallory", "iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "iat": now}
    claims["exp"] = now + 600
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def assert_rejected(server: LiveServer, token: str) -> None:
    body = await server.graphql(ME, token=token)
    assert error_codes(body) == ["UNAUTHENTICATED"], body


async def test_dev_token_is_accepted(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql(ME, token=signer.mint("alice"))
    assert body == {"data": {"me": None}}


async def test_alg_none_is_rejected(server: LiveServer, signer: DevSigner) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": signer.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    await assert_rejected(server, f"{header}.{payload}.")


async def test_hs256_signed_with_the_public_key_is_rejected(
    server: LiveServer, signer: DevSigner
) -> None:
    public_pem = jwt.PyJWK(signer.jwks()["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": signer.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    await assert_rejected(server, f"{signing_input}.{_b64(mac)}")


async def test_expired_token_is_rejected(server: LiveServer, signer: DevSigner) -> None:
    await assert_rejected(
        server, signer.mint("mallory", iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    )


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
async def test_token_missing_a_required_claim_is_rejected(
    server: LiveServer, signer: DevSigner, claim: str
) -> None:
    key = serialization.load_pem_private_key(
        (signer.data_dir / "jwt-dev-key.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)  # the dev key is RS256's
    token = jwt.encode(
        _claims(**{claim: None}), key, algorithm="RS256", headers={"kid": signer.kid}
    )
    await assert_rejected(server, token)


async def test_wrong_issuer_and_audience_are_rejected(
    server: LiveServer, signer: DevSigner
) -> None:
    await assert_rejected(server, signer.mint("mallory", iss="https://evil.example"))
    await assert_rejected(server, signer.mint("mallory", aud="another-app"))


async def test_unknown_kid_is_rejected(server: LiveServer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), other, algorithm="RS256", headers={"kid": "unknown"})
    await assert_rejected(server, token)


async def test_garbage_and_wrong_scheme_are_rejected(server: LiveServer, signer: DevSigner) -> None:
    await assert_rejected(server, "not.a.jwt")
    body = await server.graphql(ME, headers={"authorization": f"Basic {signer.mint('x')}"})
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_dev_jwks_is_published(server: LiveServer, signer: DevSigner) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/.well-known/jwks.json")
    assert response.json() == signer.jwks()
    assert "d" not in response.json()["keys"][0]  # the private exponent stays private


# --- an external JWKS, served over real HTTP -------------------------------------------


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[Issuer, str]]:
    provider = Issuer()
    provider.add_key("k1")
    async with LiveServer(provider.app()) as live:
        yield provider, f"{live.url}/.well-known/jwks.json"


async def external_server(
    tmp_path: Path, database_url: str, jwks_url: str, **overrides: Any
) -> LiveServer:
    settings = make_settings(
        tmp_path,
        database_url,
        jwks_url=jwks_url,
        jwt_issuer="https://auth.example",
        jwt_audience="walletql-app",
        jwt_required_scope="user:basic",
        **overrides,
    )
    return LiveServer(create_app(settings))


async def test_rotated_key_is_accepted_once_published(
    tmp_path: Path, database_url: str, issuer: tuple[Issuer, str]
) -> None:
    provider, url = issuer
    async with await external_server(
        tmp_path, database_url, url, jwks_min_refetch_seconds=0
    ) as live:
        assert (await live.graphql(ME, token=provider.token("k1"))) == {"data": {"me": None}}
        provider.add_key("k2", publish=False)
        await assert_rejected(live, provider.token("k2"))
        provider.published.append("k2")
        assert (await live.graphql(ME, token=provider.token("k2"))) == {"data": {"me": None}}


async def test_unknown_kid_refetches_are_rate_limited(
    tmp_path: Path, database_url: str, issuer: tuple[Issuer, str]
) -> None:
    provider, url = issuer
    provider.add_key("k9", publish=False)
    async with await external_server(
        tmp_path, database_url, url, jwks_min_refetch_seconds=60
    ) as live:
        for _ in range(10):
            await assert_rejected(live, provider.token("k9"))
    assert provider.fetches == 1


async def test_last_good_keys_survive_a_jwks_outage(
    tmp_path: Path, database_url: str, issuer: tuple[Issuer, str]
) -> None:
    provider, url = issuer
    async with await external_server(
        tmp_path, database_url, url, jwks_cache_seconds=1, jwks_min_refetch_seconds=0
    ) as live:
        assert (await live.graphql(ME, token=provider.token("k1")))["data"] == {"me": None}
        provider.down = True
        await asyncio.sleep(1.1)  # let the cache go stale so the next request refetches
        fetches_before = provider.fetches
        assert (await live.graphql(ME, token=provider.token("k1")))["data"] == {"me": None}
        assert provider.fetches > fetches_before  # it did try, and kept the old keys


async def test_required_scope_is_enforced(
    tmp_path: Path, database_url: str, issuer: tuple[Issuer, str]
) -> None:
    provider, url = issuer
    async with await external_server(tmp_path, database_url, url) as live:
        await assert_rejected(live, provider.token("k1", scope="other:thing"))


async def test_dev_tokens_and_dev_jwks_are_off_with_an_external_jwks(
    tmp_path: Path, database_url: str, issuer: tuple[Issuer, str]
) -> None:
    _, url = issuer
    dev = DevSigner(tmp_path)
    async with await external_server(tmp_path, database_url, url) as live:
        await assert_rejected(live, dev.mint("alice"))
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{live.url}/.well-known/jwks.json")
        assert response.status_code == 404


# --- verified tokens are remembered, never past their expiry or their key -------------------


def _verifier(keys: dict[str, Any], *, leeway: int = 0, cache_size: int = 16) -> TokenVerifier:
    async def fetch() -> dict[str, Any]:
        return keys

    return TokenVerifier(
        JwksCache(fetch, ttl=0.05, min_refetch=0),
        algorithms=["RS256"],
        issuer=DEV_ISSUER,
        audience=DEV_AUDIENCE,
        required_scope=None,
        leeway=leeway,
        cache_size=cache_size,
    )


async def test_a_remembered_token_is_refused_once_it_expires(signer: DevSigner) -> None:
    verifier = _verifier(signer.jwks())
    token = signer.mint("alice", ttl=1)
    assert (await verifier.verify(token)).sub == "alice"
    assert (await verifier.verify(token)).sub == "alice"
    await asyncio.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.1
    )
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks(
    signer: DevSigner, tmp_path: Path
) -> None:
    keys = {"keys": list(signer.jwks()["keys"])}
    verifier = _verifier(keys)
    token = signer.mint("alice")
    assert (await verifier.verify(token)).sub == "alice"
    keys["keys"] = DevSigner(tmp_path / "rotated").jwks()["keys"]  # the provider rotates
    await asyncio.sleep(0.1)  # the key set goes stale: the next request refetches it
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(token)


async def test_a_tampered_copy_of_a_remembered_token_is_refused(signer: DevSigner) -> None:
    verifier = _verifier(signer.jwks())
    token = signer.mint("alice")
    assert (await verifier.verify(token)).sub == "alice"
    header, _payload, signature = token.split(".")
    forged = _b64(json.dumps(_claims(sub="bob")).encode())
    with pytest.raises(Unauthenticated, match="invalid token"):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_more_tokens_than_the_cache_holds_all_verify(signer: DevSigner) -> None:
    verifier = _verifier(signer.jwks(), cache_size=2)
    tokens = [signer.mint(f"user-{i}") for i in range(5)]
    for _ in range(2):
        assert [(await verifier.verify(t)).sub for t in tokens] == [f"user-{i}" for i in range(5)]


async def test_a_remembered_token_evicted_while_the_key_set_refreshes_still_verifies(
    signer: DevSigner,
) -> None:
    # The provider is down at the refresh: the last good key set stays. Meanwhile another
    # token verifies afresh and, the cache holding one token, pushes the remembered one out.
    fetching, down = asyncio.Event(), asyncio.Event()
    fetches = 0

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        if fetches == 1:
            return signer.jwks()
        fetching.set()
        await down.wait()
        raise httpx.ConnectError("the provider is down")

    now = 0.0
    jwks = JwksCache(fetch, ttl=10, min_refetch=5, clock=lambda: now)
    verifier = TokenVerifier(
        jwks, algorithms=["RS256"], issuer=DEV_ISSUER, audience=DEV_AUDIENCE,
        required_scope=None, leeway=0, cache_size=1,
    )  # fmt: skip
    remembered, fresh = signer.mint("alice"), signer.mint("bob")
    assert (await verifier.verify(remembered)).sub == "alice"
    now = 20.0  # the key set is stale: the next look refetches it
    newcomer = asyncio.create_task(verifier.verify(fresh))
    await fetching.wait()
    returning = asyncio.create_task(verifier.verify(remembered))
    await asyncio.sleep(0)  # it waits for the refresh under way
    down.set()
    assert [p.sub for p in await asyncio.gather(newcomer, returning)] == ["bob", "alice"]
