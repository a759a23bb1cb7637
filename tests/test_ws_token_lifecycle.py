"""A graphql-ws client set up as the README says never storms on a refused or expired token.

Each test counts the connects of a real graphql-ws client (tests/node/ws_auth_retry.mjs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.env import make_settings
from testkit.pipeline import new_wallet
from testkit.server import LiveServer
from tests.node_support import node_json, require_node_package
from walletql.app import create_app
from walletql.devauth import DevSigner

FORBIDDEN = {"code": 4403, "reason": "Forbidden"}
EXPIRED = {"code": 4403, "reason": "Token expired"}
# Tokens below expired 5 s ago: within this leeway, they have 4-5 s left when minted, room
# for node to start and connect on a busy machine.
LEEWAY = 10


async def alice_reconnects(tmp_path: Path, database_url: str, *tokens: str) -> Any:
    """The client's report, connecting as alice with ``tokens`` in turn (on a server with
    ``LEEWAY``). Alice has an account, so her myTransactions subscription stays open."""
    settings = make_settings(tmp_path, database_url, jwt_leeway_seconds=LEEWAY)
    async with LiveServer(create_app(settings)) as server:
        await new_wallet(server, DevSigner(tmp_path), "alice", None)
        return await node_json("ws_auth_retry.mjs", server.ws_url, *tokens)


@pytest.fixture(autouse=True)
def _graphql_ws() -> None:
    require_node_package("graphql-ws")


async def test_a_bad_token_is_one_connect_and_one_error(server: LiveServer) -> None:
    report = await node_json("ws_auth_retry.mjs", server.ws_url, "not-a-jwt")
    assert report["connects"] == 1
    assert report["acks"] == 0
    assert report["error"] == FORBIDDEN


async def test_a_token_past_exp_plus_leeway_is_refused_at_init(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, jwt_leeway_seconds=5)
    async with LiveServer(create_app(settings)) as server:
        expired = DevSigner(tmp_path).mint("alice", ttl=-6)
        report = await node_json("ws_auth_retry.mjs", server.ws_url, expired)
    assert (report["connects"], report["acks"]) == (1, 0)
    assert report["error"] == FORBIDDEN


async def test_expiry_closes_once_and_a_fresh_token_resumes(
    tmp_path: Path, database_url: str
) -> None:
    signer = DevSigner(tmp_path)
    # Expired already, but within the leeway: HTTP accepts it, so the socket does too,
    # until exp + leeway.
    report = await alice_reconnects(
        tmp_path, database_url, signer.mint("alice", ttl=-5), signer.mint("alice")
    )
    assert (report["connects"], report["acks"]) == (2, 2), report["error"]
    assert report["closes"] == [EXPIRED]
    assert report["data"] == {"me": {"sub": "alice"}}
    assert report["error"] is None


async def test_expiry_without_a_fresh_token_stops_after_one_reconnect(
    tmp_path: Path, database_url: str
) -> None:
    signer = DevSigner(tmp_path)
    report = await alice_reconnects(tmp_path, database_url, signer.mint("alice", ttl=-5))
    assert (report["connects"], report["acks"]) == (2, 1)
    assert report["closes"] == [EXPIRED, FORBIDDEN]
    assert report["error"] == FORBIDDEN
