"""Bad input gets a code: hostile text, trailing newlines, odd digits, token subjects,
usernames that differ only by Unicode form, and two password changes at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from testkit.graphql import error_codes, only_error
from testkit.pipeline import PASSWORD, new_wallet
from testkit.server import LiveServer
from walletql.devauth import DevSigner

CREATE = "mutation($i: CreateUserInput!) { createUser(input: $i) { username } }"
SIGN = "mutation($i: SignMessageInput!) { signMessage(input: $i) { encoding } }"


@pytest.mark.parametrize("bad", ["pass\ud800word", "pass\x00word"], ids=["surrogate", "nul"])
async def test_stored_or_hashed_text_rejects_lone_surrogates_and_nul(
    server: LiveServer, signer: DevSigner, bad: str
) -> None:
    body = await server.graphql(CREATE, {"i": {"password": bad}}, token=signer.mint("s1"))
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}
    token, _ = await new_wallet(server, signer, "s2", None)
    body = await server.graphql(SIGN, {"i": {"message": bad, "password": PASSWORD}}, token=token)
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "message"}
    body = await server.graphql(SIGN, {"i": {"message": "hi", "password": bad}}, token=token)
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "password"}
    submit = """mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id } }"""
    body = await server.graphql(
        submit,
        {"i": {"to": "0x000000000000000000000000000000000000dEaD", "password": PASSWORD,
               "idempotencyKey": bad}},
        token=token,
    )  # fmt: skip
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "idempotencyKey"}


async def test_scalars_must_match_in_full(server: LiveServer, signer: DevSigner) -> None:
    token, _ = await new_wallet(server, signer, "full", None)
    sign_tx = "mutation($i: SignTransactionInput!) { signTransaction(input: $i) { hash } }"
    to = "0x000000000000000000000000000000000000dEaD"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"to": to, "password": PASSWORD, "value": "1\n"}, "value"),
        ({"to": to, "password": PASSWORD, "data": "0xab\n"}, "data"),
        ({"to": to + "\n", "password": PASSWORD}, "to"),
        ({"to": to, "password": PASSWORD, "chainId": "²"}, "chainId"),
        ({"to": to, "password": PASSWORD, "value": str(2**256)}, "value"),
        ({"to": to, "password": PASSWORD, "value": "9" * 5000}, "value"),
    ]
    for given, field in cases:
        body = await server.graphql(sign_tx, {"i": given}, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (given, body)
        assert body["errors"][0]["extensions"]["field"] == field, body
    # AUTO takes "0xab\n" as text: it is not hex in full.
    body = await server.graphql(
        SIGN, {"i": {"message": "0xab\n", "password": PASSWORD}}, token=token
    )
    assert body == {"data": {"signMessage": {"encoding": "TEXT"}}}


async def test_a_5000_digit_number_in_variables_gets_a_code(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            server.graphql_url,
            content=b'{"query": "{ chains { name } }", "variables": {"n": ' + b"9" * 5000 + b"}}",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]


async def test_cursors_with_extreme_dates_are_bad_user_input(
    server: LiveServer, signer: DevSigner
) -> None:
    import base64

    query = "query($a: String) { transactions(after: $a) { edges { cursor } } }"
    token, _ = await new_wallet(server, signer, "cursors", None)
    for stamp in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"):
        cursor = base64.urlsafe_b64encode(
            f"{stamp}|00000000-0000-0000-0000-000000000000".encode()
        ).decode()
        body = await server.graphql(query, {"a": cursor}, token=token)
        assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


@pytest.mark.parametrize(
    "sub", ["a\x00b", "x" * 256, "\ud800"], ids=["nul", "too-long", "surrogate"]
)
async def test_token_subjects_must_be_bounded_text(
    server: LiveServer, signer: DevSigner, sub: str
) -> None:
    body = await server.graphql("{ me { id } }", token=signer.mint(sub))
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_usernames_are_compared_after_nfkc_and_case_folding(
    server: LiveServer, signer: DevSigner
) -> None:
    first = await server.graphql(
        CREATE, {"i": {"password": PASSWORD, "username": "U316f6349"}}, token=signer.mint("u1")
    )
    assert first == {"data": {"createUser": {"username": "U316f6349"}}}
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "U316f6349")  # NFKC folds it to ASCII
    for i, twin in enumerate(["u316f6349", fullwidth, "u316F6349"]):
        body = await server.graphql(
            CREATE, {"i": {"password": PASSWORD, "username": twin}}, token=signer.mint(f"t{i}")
        )
        assert only_error(body)["extensions"] == {"code": "USER_EXISTS", "field": "username"}
    body = await server.graphql(
        CREATE, {"i": {"password": PASSWORD, "username": "u316f6349\n"}}, token=signer.mint("nl")
    )
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "username"}


async def test_graphiql_page_sends_a_csp_and_security_headers(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(server.graphql_url, headers={"accept": "text/html"})
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    nonce = csp.split("script-src 'self' 'nonce-", 1)[1].split("'", 1)[0]
    assert "unsafe-inline" not in csp
    # Every inline script and style carries this response's nonce; the next page gets another.
    page = response.text
    assert page.count("<script nonce=") == page.count("<script") - page.count("<script src=")
    assert page.count(f'nonce="{nonce}"') == page.count("nonce=")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_typed_data_of_a_caller_without_a_wallet_is_not_even_parsed(
    server: LiveServer, signer: DevSigner
) -> None:
    sign = (
        'mutation($t: JSON!) { signTypedData(input: {typedData: $t, password: "x"}) { signature } }'
    )
    deep = "[" * 100_000 + "]" * 100_000
    body = await server.graphql(sign, {"t": deep}, token=signer.mint("nobody-here"))
    assert error_codes(body) == ["NOT_FOUND"]
