"""GraphQL over HTTP for frontend clients: automatic persisted queries, batching refused with a
code, application/graphql-response+json, and every refusal as a coded GraphQL error."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from strawberry.http import GraphQLRequestData

from testkit.server import LiveServer
from tests.node_support import node_json, require_node_package
from walletql.devauth import DevSigner
from walletql.persisted_queries import PersistedQueries

QUERY = "{ chains { chainId } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
APQ = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}
MODERN = "application/graphql-response+json, application/json;q=0.9"


async def post(server: LiveServer, body: Any, accept: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if accept:
        headers["accept"] = accept
    async with httpx.AsyncClient() as client:
        return await client.post(server.graphql_url, content=json.dumps(body), headers=headers)


def code_of(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    code: str = errors[0]["extensions"]["code"]
    return code


async def test_an_unknown_hash_asks_for_the_query_then_the_hash_alone_runs_it(
    server: LiveServer,
) -> None:
    missing = await post(server, {"extensions": APQ})
    assert missing.status_code == 200
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert code_of(missing) == "PERSISTED_QUERY_NOT_FOUND"

    registered = await post(server, {"query": QUERY, "extensions": APQ})
    by_hash = await post(server, {"extensions": APQ})
    assert registered.json() == by_hash.json()
    assert by_hash.json()["data"]["chains"]

    async with httpx.AsyncClient() as client:
        by_get = await client.get(server.graphql_url, params={"extensions": json.dumps(APQ)})
    assert by_get.json() == by_hash.json()


async def test_a_query_that_does_not_match_its_hash_is_refused(server: LiveServer) -> None:
    wrong = await post(server, {"query": "{ me { id } }", "extensions": APQ})
    assert wrong.status_code == 400
    assert code_of(wrong) == "BAD_REQUEST"
    # …and nothing was stored under that hash.
    assert code_of(await post(server, {"extensions": APQ})) == "PERSISTED_QUERY_NOT_FOUND"


def test_the_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = PersistedQueries(max_entries=2, max_bytes=38)

    def send(query: str) -> None:
        digest = hashlib.sha256(query.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        cache.resolve(GraphQLRequestData(query, None, None, extensions))

    for query in ("{ a }", "{ b }", "{ c }"):
        send(query)
    assert len(cache) == 2  # "{ a }" went first
    send("{ " + "x" * 30 + " }")
    assert len(cache) == 1  # 34 bytes: only room for itself


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "BAD_REQUEST"),
        ([{"query": QUERY}, {"query": QUERY}], 400, "BAD_REQUEST"),  # a batch: refused
        ({"variables": {}}, 400, "BAD_REQUEST"),  # no query
    ],
    ids=["bad-json", "batch", "no-query"],
)
async def test_requests_refused_before_graphql_runs_carry_a_code(
    server: LiveServer, body: Any, status: int, code: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.graphql_url,
            content=body if isinstance(body, str) else json.dumps(body),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert code_of(response) == code


async def test_a_mutation_over_get_is_405(server: LiveServer, signer: DevSigner) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            server.graphql_url,
            params={"query": 'mutation { createUser(input: {password: "x"}) { id } }'},
            headers={"authorization": f"Bearer {signer.mint('alice')}"},
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert code_of(response) == "METHOD_NOT_ALLOWED"


async def test_graphql_response_json_when_the_client_prefers_it(server: LiveServer) -> None:
    ok = await post(server, {"query": QUERY}, accept=MODERN)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/graphql-response+json"
    assert ok.json()["data"]["chains"]

    invalid = {"query": "{ nope }"}
    modern = await post(server, invalid, accept=MODERN)
    legacy = await post(server, invalid, accept="application/json")
    assert (modern.status_code, legacy.status_code) == (400, 200)
    assert modern.headers["content-type"] == "application/graphql-response+json"
    assert legacy.headers["content-type"].startswith("application/json")
    assert code_of(modern) == code_of(legacy) == "BAD_USER_INPUT"

    refused = await post(server, {"extensions": APQ}, accept=MODERN)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/graphql-response+json"
    assert code_of(refused) == "PERSISTED_QUERY_NOT_FOUND"


async def test_apollo_persisted_queries_work_and_batching_is_refused_with_a_code(
    server: LiveServer, signer: DevSigner
) -> None:
    require_node_package("@apollo/client")
    report = await node_json("apollo_links.mjs", server.url, signer.mint("alice"))
    apq = report["apq"]
    assert apq["first"] == apq["second"]
    assert apq["first"]["chains"][0]["isDefault"] is True
    sent = [(r["query"], r["hash"]) for r in apq["requests"]]
    # First: the hash alone, PersistedQueryNotFound, then the query with its hash.
    # Second: the hash alone is enough.
    assert sent == [(False, True), (True, True), (False, True)]
    assert apq["firstRequests"] == 2
    assert report["batch"]["error"] == {"status": 400, "codes": ["BAD_REQUEST"]}
