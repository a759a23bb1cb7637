"""The GraphQL surface: SDL file, limits, malformed input, masking, GET, GraphiQL."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from schema import build_schema
from testkit.env import make_settings
from testkit.graphql import error_codes, only_error
from testkit.server import LiveServer
from walletql.app import create_app
from walletql.devauth import DevSigner

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_file_is_up_to_date() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", "schema.graphql is stale: run make schema"


async def test_malformed_graphql_is_bad_user_input(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql("{ me { id ", token=signer.mint("a"))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "Syntax Error" in body["errors"][0]["message"]


async def test_unknown_field_and_wrong_type_are_bad_user_input(
    server: LiveServer, signer: DevSigner
) -> None:
    body = await server.graphql("{ me { nope } }", token=signer.mint("a"))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await server.graphql(
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        {"i": {"password": 12345678}},
        token=signer.mint("a"),
    )
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}


async def test_deep_queries_too_many_aliases_or_huge_documents_are_too_complex(
    server: LiveServer, signer: DevSigner
) -> None:
    token = signer.mint("a")
    aliases = " ".join(f"a{i}: me {{ id }}" for i in range(16))
    body = await server.graphql(f"{{ {aliases} }}", token=token)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    huge = "{ " + " ".join(["__typename"] * 2500) + " }"
    body = await server.graphql(huge, token=token)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]


async def test_queries_deeper_than_the_limit_are_too_complex(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, max_query_depth=1)
    token = DevSigner(tmp_path).mint("a")
    async with LiveServer(create_app(settings)) as live:
        body = await live.graphql("{ me { wallet { address } } }", token=token)
        assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
        assert (await live.graphql("{ me { id } }", token=token)) == {"data": {"me": None}}


async def test_unexpected_failure_is_masked_and_logged_with_the_request_id(
    server: LiveServer, signer: DevSigner, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE wallets CASCADE"))
    await engine.dispose()
    with caplog.at_level(logging.ERROR, logger="walletql.errors"):
        body = await server.graphql("{ me { id } }", token=signer.mint("a"))
    error = only_error(body)
    assert error["extensions"]["code"] == "INTERNAL"
    request_id = error["extensions"]["requestId"]
    assert request_id in error["message"]
    assert "wallets" not in error["message"]
    assert "SELECT" not in str(body)
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1, "the internal error is logged once, with its request id"
    assert "UndefinedTableError" in logged[0]  # the cause, for whoever reads the log
    assert "SELECT" not in logged[0]
    assert "Traceback" not in logged[0]


async def test_get_runs_queries_but_not_mutations(server: LiveServer, signer: DevSigner) -> None:
    headers = {"authorization": f"Bearer {signer.mint('a')}"}
    async with httpx.AsyncClient() as client:
        ok = await client.get(
            server.graphql_url, params={"query": "{ me { id } }"}, headers=headers
        )
        assert ok.json() == {"data": {"me": None}}
        mutation = 'mutation { createUser(input: {password: "long enough"}) { id } }'
        refused = await client.get(server.graphql_url, params={"query": mutation}, headers=headers)
    assert refused.status_code == 405  # GraphQL over HTTP: mutations only by POST
    assert refused.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert (await server.graphql("{ me { id } }", token=signer.mint("a"))) == {"data": {"me": None}}


async def test_graphiql_page_and_its_assets_are_served_locally(server: LiveServer) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(server.graphql_url, headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql.min.js" in page.text
        assert "https://" not in page.text
        assert "http://" not in page.text
        for asset in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js"):
            response = await client.get(f"{server.url}/static/graphiql/{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 1000


async def test_a_subscription_over_http_names_the_websocket_endpoint(
    server: LiveServer, signer: DevSigner
) -> None:
    query = 'subscription { transactionStatus(id: "00000000-0000-0000-0000-000000000000") { seq } }'
    error = only_error(await server.graphql(query, token=signer.mint("a")))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "websocket": server.ws_url}
    assert server.ws_url in error["message"]
    assert "graphql-transport-ws" in error["message"]


async def test_the_root_redirects_to_graphiql_keeping_the_token(server: LiveServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/?token=abc")
    assert response.status_code == 307
    assert response.headers["location"] == "/graphql?token=abc"


@pytest.mark.parametrize("inline", [True, False], ids=["literal", "variable"])
async def test_a_bad_to_address_names_the_field_to(
    server: LiveServer, signer: DevSigner, inline: bool
) -> None:
    bad = "0x123"
    if inline:
        query = f'mutation {{ signTransaction(input: {{to: "{bad}", password: "p"}}) {{ hash }} }}'
        body = await server.graphql(query, token=signer.mint("a"))
    else:
        query = "mutation($i: SignTransactionInput!) { signTransaction(input: $i) { hash } }"
        body = await server.graphql(
            query, {"i": {"to": bad, "password": "p"}}, token=signer.mint("a")
        )
    error = only_error(body)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "to"}
    body = await server.graphql(
        f'{{ userByAddress(address: "{bad}") {{ id }} }}', token=signer.mint("a")
    )
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "address"}
