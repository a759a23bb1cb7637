"""Users and wallets through GraphQL over HTTP, against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

from eth_utils.address import is_checksum_address

from testkit.graphql import error_codes, only_error
from testkit.server import LiveServer
from walletql.devauth import DevSigner

CREATE = """
mutation Create($input: CreateUserInput!) {
  createUser(input: $input) { id sub username wallet { address } createdAt }
}
"""
ME = "{ me { id sub username wallet { address } createdAt } }"


async def create(server: LiveServer, token: str, username: str | None = "alice") -> dict[str, Any]:
    body = await server.graphql(
        CREATE, {"input": {"password": "correct horse battery", "username": username}}, token=token
    )
    assert "errors" not in body, body
    created: dict[str, Any] = body["data"]["createUser"]
    return created


async def test_create_user_returns_user_with_checksummed_wallet(
    server: LiveServer, signer: DevSigner
) -> None:
    user = await create(server, signer.mint("alice"))
    assert user["sub"] == "alice"
    assert user["username"] == "alice"
    assert is_checksum_address(user["wallet"]["address"])
    assert user["createdAt"].endswith("+00:00")


async def test_me_is_null_before_create_user(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql(ME, token=signer.mint("newcomer"))
    assert body == {"data": {"me": None}}


async def test_me_returns_the_created_user(server: LiveServer, signer: DevSigner) -> None:
    token = signer.mint("alice")
    created = await create(server, token)
    body = await server.graphql(ME, token=token)
    assert body["data"]["me"] == created


async def test_create_user_twice_gives_user_exists(server: LiveServer, signer: DevSigner) -> None:
    token = signer.mint("alice")
    await create(server, token)
    body = await server.graphql(CREATE, {"input": {"password": "another password"}}, token=token)
    assert error_codes(body) == ["USER_EXISTS"]
    assert body["data"] is None


async def test_taken_username_gives_user_exists_naming_the_field(
    server: LiveServer, signer: DevSigner
) -> None:
    await create(server, signer.mint("alice"), username="Alice")
    body = await server.graphql(
        CREATE, {"input": {"password": "another password", "username": "alice"}},
        token=signer.mint("bob"),
    )  # fmt: skip
    error = only_error(body)
    assert error["extensions"] == {"code": "USER_EXISTS", "field": "username"}


async def test_user_without_username_is_allowed(server: LiveServer, signer: DevSigner) -> None:
    user = await create(server, signer.mint("carol"), username=None)
    assert user["username"] is None


async def test_bad_username_is_bad_user_input(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql(
        CREATE, {"input": {"password": "long enough", "username": "a b"}}, token=signer.mint("x")
    )
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "username"}


async def test_short_and_huge_passwords_are_weak(server: LiveServer, signer: DevSigner) -> None:
    for password in ("1234567", "x" * 1025):
        body = await server.graphql(
            CREATE, {"input": {"password": password}}, token=signer.mint("weak")
        )
        assert only_error(body)["extensions"] == {"code": "WEAK_PASSWORD", "field": "password"}
    # Nothing was created by the failed attempts.
    assert (await server.graphql(ME, token=signer.mint("weak"))) == {"data": {"me": None}}


async def test_user_by_id_shows_public_fields_only(server: LiveServer, signer: DevSigner) -> None:
    alice = await create(server, signer.mint("alice"))
    query = "query($id: ID!) { user(id: $id) { id username wallet { address } createdAt } }"
    body = await server.graphql(query, {"id": alice["id"]}, token=signer.mint("bob"))
    assert body["data"]["user"] == {
        "id": alice["id"],
        "username": "alice",
        "wallet": alice["wallet"],
        "createdAt": alice["createdAt"],
    }
    private = await server.graphql(
        "query($id: ID!) { user(id: $id) { sub } }", {"id": alice["id"]}, token=signer.mint("bob")
    )
    assert error_codes(private) == ["BAD_USER_INPUT"]
    assert "sub" in private["errors"][0]["message"]


async def test_user_by_address_accepts_any_case(server: LiveServer, signer: DevSigner) -> None:
    alice = await create(server, signer.mint("alice"))
    address = alice["wallet"]["address"]
    query = "query($a: Address!) { userByAddress(address: $a) { id wallet { address } } }"
    body = await server.graphql(query, {"a": address.lower()}, token=signer.mint("bob"))
    assert body["data"]["userByAddress"] == {"id": alice["id"], "wallet": {"address": address}}


async def test_bad_address_and_bad_checksum_are_rejected(
    server: LiveServer, signer: DevSigner
) -> None:
    query = "query($a: Address!) { userByAddress(address: $a) { id } }"
    good = "0x4F48EC81a0eAdA7bF9b5B31E1d6834542C02cdcB"
    for bad in ("0x1234", "not an address", good[:-1] + "b", 42):
        body = await server.graphql(query, {"a": bad}, token=signer.mint("bob"))
        error = only_error(body)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert error["extensions"]["field"] == "a"
    literal = await server.graphql(
        '{ userByAddress(address: "0x12") { id } }', token=signer.mint("bob")
    )
    assert error_codes(literal) == ["BAD_USER_INPUT"]


async def test_unknown_user_is_null(server: LiveServer, signer: DevSigner) -> None:
    token = signer.mint("bob")
    body = await server.graphql(
        'query { user(id: "00000000-0000-0000-0000-000000000000") { id } }', token=token
    )
    assert body == {"data": {"user": None}}
    address = "0x0000000000000000000000000000000000000001"
    body = await server.graphql(f'{{ userByAddress(address: "{address}") {{ id }} }}', token=token)
    assert body == {"data": {"userByAddress": None}}


async def test_malformed_user_id_is_bad_user_input(server: LiveServer, signer: DevSigner) -> None:
    body = await server.graphql('{ user(id: "nope") { id } }', token=signer.mint("bob"))
    assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


async def test_every_field_needs_a_token(server: LiveServer) -> None:
    for query in (ME, '{ user(id: "x") { id } }'):
        body = await server.graphql(query)
        assert error_codes(body) == ["UNAUTHENTICATED"]
    body = await server.graphql(CREATE, {"input": {"password": "long enough"}})
    assert error_codes(body) == ["UNAUTHENTICATED"]
