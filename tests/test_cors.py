"""CORS: one WALLETQL_ALLOWED_ORIGINS list for HTTP and the websocket."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from testkit.env import make_settings
from testkit.server import LiveServer
from testkit.ws import PROTOCOL
from walletql.app import create_app
from walletql.settings import Settings

APOLLO_HEADERS = "authorization,content-type,apollographql-client-name,apollo-require-preflight"


async def preflight(server: LiveServer, origin: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.options(
            server.graphql_url,
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": APOLLO_HEADERS,
            },
        )


async def post_from(server: LiveServer, origin: str) -> httpx.Response:
    """A query POSTed from a page on ``origin``."""
    async with httpx.AsyncClient() as client:
        return await client.post(
            server.graphql_url, json={"query": "{ chains { chainId } }"}, headers={"origin": origin}
        )


async def test_a_dev_server_page_on_any_localhost_port_may_post(server: LiveServer) -> None:
    answer = await preflight(server, "http://localhost:5173")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert set(APOLLO_HEADERS.split(",")) <= allowed
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers

    posted = await post_from(server, "http://127.0.0.1:3000")
    assert posted.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
    assert posted.json()["data"]["chains"]


async def test_an_unlisted_origin_gets_no_cors_headers(server: LiveServer) -> None:
    answer = await preflight(server, "https://evil.example")
    assert "access-control-allow-origin" not in answer.headers
    posted = await post_from(server, "https://evil.example")
    assert "access-control-allow-origin" not in posted.headers


async def test_production_allows_no_origin_by_default(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, env="production", jwks_url="http://127.0.0.1:9/jwks",
        pepper="p" * 32,
        # Production refuses the in-process EVM; this test calls no chain.
        chains=[{"chain_id": 1, "name": "remote", "rpc_url": "http://127.0.0.1:9"}],
    )  # fmt: skip
    assert settings.origins == []
    async with LiveServer(create_app(settings)) as server:
        answer = await preflight(server, "http://localhost:5173")
        assert "access-control-allow-origin" not in answer.headers
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                server.ws_url, subprotocols=[PROTOCOL], origin=Origin("http://localhost:5173")
            )
        assert refused.value.response.status_code == 403


async def test_listed_origins_and_credentials_apply_to_http_and_websocket(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url, allowed_origins=["https://app.example"],
        cors_allow_credentials=True,
    )  # fmt: skip
    async with LiveServer(create_app(settings)) as server:
        answer = await preflight(server, "https://app.example")
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        assert answer.headers["access-control-allow-credentials"] == "true"
        # The list replaces the dev defaults, for both paths.
        assert (
            "access-control-allow-origin"
            not in (await preflight(server, "http://localhost:5173")).headers
        )
        async with connect(
            server.ws_url, subprotocols=[PROTOCOL], origin=Origin("https://app.example")
        ):
            pass
        with pytest.raises(InvalidStatus):
            await connect(
                server.ws_url, subprotocols=[PROTOCOL], origin=Origin("http://localhost:5173")
            )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"allowed_origins": ["app.example"]}, "is not an origin"),
        ({"allowed_origins": ["*"], "cors_allow_credentials": True}, "needs listed origins"),
    ],
)
def test_bad_origin_settings_are_start_up_errors(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[arg-type]
