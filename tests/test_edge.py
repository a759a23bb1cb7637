"""The edge: bodies, JSON depth, cost, fragments and websocket messages each get a code."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from testkit.graphql import error_codes, only_error
from testkit.pipeline import PASSWORD, new_wallet
from testkit.server import LiveServer
from tests import raw_http
from walletql.devauth import DevSigner
from walletql.recursion import DEFAULT_RECURSION_LIMIT

PROTOCOL = "graphql-transport-ws"
DEEP = "[" * 100_000 + "]" * 100_000


async def post_raw(server: LiveServer, body: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(
            server.graphql_url,
            content=body,
            headers={"content-type": "application/json", **headers},
        )


@pytest.mark.parametrize("body", [b'"a string"', b"null", b"123", b"true", b"[]", b"[1, 2]"])
async def test_a_body_that_is_not_a_json_object_is_bad_request(
    server: LiveServer, body: bytes
) -> None:
    response = await post_raw(server, body)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]


async def test_a_body_that_is_not_json_is_bad_request(server: LiveServer) -> None:
    response = await post_raw(server, b"{not json")
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]


async def test_deep_json_in_the_body_or_get_variables_is_bad_user_input(
    server: LiveServer,
) -> None:
    response = await post_raw(
        server, b'{"query": "{ chains { name } }", "variables": {"v": ' + DEEP.encode() + b"}}"
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(
            server.graphql_url, params={"query": "{ chains { name } }", "variables": "[" * 5000}
        )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


async def test_a_body_over_the_cap_is_413_with_a_code(server: LiveServer) -> None:
    response = await post_raw(server, b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert response.status_code == 413
    assert error_codes(response.json()) == ["PAYLOAD_TOO_LARGE"]

    # No content-length: the body is counted as it arrives, and refused past the cap.
    status, body = await raw_http.request(
        server.port, raw_http.post_head("/graphql"), raw_http.chunked(pieces=64, size=65536)
    )
    assert status == 413
    assert body is not None
    assert error_codes(body) == ["PAYLOAD_TOO_LARGE"]


async def test_deep_graphql_documents_are_too_complex(
    server: LiveServer, signer: DevSigner
) -> None:
    token = signer.mint("a")
    literal = "{ chains { name } user(id: " + "[" * 900 + '"x"' + "]" * 900 + ") { id } }"
    body = await server.graphql(literal, token=token)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    # Brackets inside strings and comments are text, not nesting.
    text = (
        "{ chains { name } } # " + "{" * 500 + '\nquery Q { user(id: "' + "[" * 500 + '") { id } }'
    )
    body = await server.graphql(text, token=token, headers={})
    assert error_codes(body) != ["QUERY_TOO_COMPLEX"]


async def test_unknown_fragment_is_bad_user_input(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql("{ me { ...Missing } }", token=signer.mint("a"))
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Missing" in error["message"]


async def test_fragment_bomb_and_wide_lists_are_too_complex(
    server: LiveServer, signer: DevSigner
) -> None:
    token = signer.mint("a")
    fragments = "".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} ...F{i + 1} }}" for i in range(20)
    )
    bomb = "{ ...F0 } " + fragments + " fragment F20 on Query { __typename }"
    body = await server.graphql(bomb, token=token)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    nested = (
        "transactions(first: 100) { edges { node { events { transaction { events { seq } } } } } }"
    )
    aliases = " ".join(f"a{i}: {nested}" for i in range(15))
    body = await server.graphql(f"{{ {aliases} }}", token=token)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert "costs" in body["errors"][0]["message"]


async def test_a_fragment_cycle_is_bad_user_input(server: LiveServer, signer: DevSigner) -> None:
    cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    body = await server.graphql(cycle, token=signer.mint("a"))
    assert set(error_codes(body)) == {"BAD_USER_INPUT"}


async def test_an_ordinary_page_of_transactions_is_within_the_cost(
    server: LiveServer, signer: DevSigner
) -> None:
    query = (
        "query($n: Int) { transactions(first: $n) { edges { cursor node { id status hash "
        "events { seq status at } hashes confirmations } } pageInfo { hasNextPage } } }"
    )
    body = await server.graphql(query, {"n": 100}, token=signer.mint("a"))
    assert body == {"data": {"transactions": {"edges": [], "pageInfo": {"hasNextPage": False}}}}


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def _close_code(server: LiveServer, frames: list[str]) -> int:
    async with connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        for frame in frames:
            await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


@pytest.mark.parametrize(
    "frame",
    ["[]", "null", '"init"', "42", json.dumps({"type": 1}), "[" * 100_000 + "]" * 100_000],
    ids=["array", "null", "string", "number", "type-not-string", "deep"],
)
async def test_malformed_frames_before_init_close_with_4400(server: LiveServer, frame: str) -> None:
    assert await _close_code(server, [frame]) == 4400


@pytest.mark.parametrize(
    "subscribe",
    [
        {"id": "1", "type": "subscribe", "payload": "{ me { id } }"},
        {"id": "1", "type": "subscribe", "payload": None},
        {"id": ["1"], "type": "subscribe", "payload": {"query": "{ me { id } }"}},
        {"id": "1", "type": "subscribe", "payload": {"query": 42}},
        {"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }", "variables": []}},
    ],
    ids=["payload-string", "payload-null", "id-list", "query-number", "variables-list"],
)
async def test_malformed_subscribe_closes_with_4400(
    server: LiveServer, signer: DevSigner, subscribe: dict[str, Any]
) -> None:
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {signer.mint('a')}"}}
    assert await _close_code(server, [json.dumps(init), json.dumps(subscribe)]) == 4400


async def test_deep_json_in_connection_init_closes_with_4400(server: LiveServer) -> None:
    frame = '{"type": "connection_init", "payload": {"a": ' + DEEP + "}}"
    assert await _close_code(server, [frame]) == 4400


async def test_the_recursion_limit_stays_the_default_while_serving(
    server: LiveServer, signer: DevSigner
) -> None:
    token, _ = await new_wallet(server, signer, "rec", None)
    body = await server.graphql(
        'mutation($p: String!) { signMessage(input: {message: "hi", password: $p}) { signature } }',
        {"p": PASSWORD},
        token=token,
    )
    assert body["data"]["signMessage"]["signature"].startswith("0x")
    import py_ecc  # noqa: F401  (raises the limit to 100,000 on a fresh import)

    sys.setrecursionlimit(100_000)  # what py_ecc and py-evm do at import time
    assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 64 + "]" * 64, False),
        ("[" * 65 + "]" * 65, True),
        ('["' + "[" * 500 + '"]', False),  # brackets inside a string are text
        ('["\\"' + "[" * 500 + '"]', False),  # an escaped quote does not end the string
        ('"\\\\"' + "[" * 65, True),  # an escaped backslash does end it
        ('"' + "\\" * 10_001 + "[" * 70, False),  # unterminated: the rest is string
    ],
)
def test_json_depth_is_read_from_the_text(text: str, too_deep: bool) -> None:
    from services.json_limits import JsonTooDeep, check_json_depth

    if too_deep:
        with pytest.raises(JsonTooDeep):
            check_json_depth(text)
    else:
        check_json_depth(text)


def test_the_document_cache_is_bounded_in_bytes_and_skips_big_queries() -> None:
    from graphql import parse

    from schema.documents import AST_BYTES_PER_QUERY_BYTE, DocumentCache

    cache = DocumentCache(max_bytes=100 * 1000 * AST_BYTES_PER_QUERY_BYTE, max_query_bytes=2000)
    document = parse("{ chains { name } }")
    queries = [f"{{ chains {{ name }} }} # {i:0990d}" for i in range(1000)]  # 1,014 bytes each
    for query in queries:
        cache.put(query, document)
    assert len(cache) == cache.max_bytes // DocumentCache.cost(queries[0]) == 98
    assert cache.bytes <= cache.max_bytes
    cache.put("{ chains { name } } #" + "x" * 5000, document)
    assert cache.get("{ chains { name } } #" + "x" * 5000) is None
    assert cache.get(queries[-1]) is not None  # the newest stay
    assert cache.get(queries[0]) is None
