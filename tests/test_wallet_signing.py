"""Signing, password management and abuse limits, on the embedded default chain."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils.crypto import keccak

from testkit.env import make_settings
from testkit.graphql import error_codes, only_error
from testkit.pipeline import PASSWORD, new_wallet
from testkit.server import LiveServer
from tests.support import seed_wallet
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.settings import Settings

SIGN_MESSAGE = """mutation($i: SignMessageInput!) {
  signMessage(input: $i) { signature messageHash address encoding }
}"""
SIGN_TYPED = """mutation($i: SignTypedDataInput!) {
  signTypedData(input: $i) { signature messageHash address encoding }
}"""

# The example of the EIP-712 specification, with its published digest and signature.
MAIL: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}
MAIL_DIGEST = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
MAIL_SIGNATURE = (
    "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
    "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c"
)


async def test_new_wallet_gets_faucet_funds_on_the_embedded_chain(
    server: LiveServer, signer: DevSigner
) -> None:
    token, _ = await new_wallet(server, signer, "alice", None)
    body = await server.graphql(
        "{ chains { chainId name isDefault } balance { chainId wei ether } }", token=token
    )
    chain = body["data"]["chains"][0]
    assert chain["name"] == "embedded"
    assert chain["isDefault"] is True
    assert body["data"]["balance"] == {
        "chainId": chain["chainId"],
        "wei": str(10 * 10**18),
        "ether": "10",
    }


async def test_sign_transaction_on_the_embedded_chain_recovers_to_the_wallet(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    body = await server.graphql(
        "mutation($i: SignTransactionInput!) "
        "{ signTransaction(input: $i) { raw from type nonce } }",
        {
            "i": {
                "to": "0x000000000000000000000000000000000000dEaD",
                "value": "1",
                "password": PASSWORD,
            }
        },
        token=token,
    )
    signed = body["data"]["signTransaction"]
    assert signed["from"] == address
    assert signed["type"] == "EIP1559"
    assert signed["nonce"] == "0"
    assert Account.recover_transaction(signed["raw"]) == address


async def test_sign_message_text_and_hex_recover_independently(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    for message, encoding, signable in (
        ("hello walletql", "TEXT", encode_defunct(text="hello walletql")),
        ("0xdeadbeef", "HEX", encode_defunct(primitive=bytes.fromhex("deadbeef"))),
    ):
        body = await server.graphql(
            SIGN_MESSAGE, {"i": {"message": message, "password": PASSWORD}}, token=token
        )
        signed = body["data"]["signMessage"]
        assert signed["encoding"] == encoding
        assert signed["address"] == address
        assert Account.recover_message(signable, signature=signed["signature"]) == address
    forced = await server.graphql(
        SIGN_MESSAGE,
        {"i": {"message": "0xdeadbeef", "password": PASSWORD, "encoding": "TEXT"}},
        token=token,
    )
    assert forced["data"]["signMessage"]["encoding"] == "TEXT"
    recovered = Account.recover_message(
        encode_defunct(text="0xdeadbeef"), signature=forced["data"]["signMessage"]["signature"]
    )
    assert recovered == address


async def test_sign_typed_data_matches_the_eip712_mail_vector(
    server: LiveServer, signer: DevSigner, settings: Settings, database_url: str
) -> None:
    cow = keccak(text="cow")
    address = await seed_wallet(database_url, settings.data_dir, "cow", cow, PASSWORD)
    assert address == MAIL["message"]["from"]["wallet"]
    body = await server.graphql(
        SIGN_TYPED, {"i": {"typedData": MAIL, "password": PASSWORD}}, token=signer.mint("cow")
    )
    signed = body["data"]["signTypedData"]
    assert signed["messageHash"] == MAIL_DIGEST
    assert signed["signature"] == MAIL_SIGNATURE
    assert (
        Account.recover_message(encode_typed_data(full_message=MAIL), signature=signed["signature"])
        == address
    )


async def test_sign_typed_data_of_a_random_wallet_recovers_and_accepts_a_json_string(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    body = await server.graphql(
        SIGN_TYPED, {"i": {"typedData": json.dumps(MAIL), "password": PASSWORD}}, token=token
    )
    signature = body["data"]["signTypedData"]["signature"]
    assert (
        Account.recover_message(encode_typed_data(full_message=MAIL), signature=signature)
        == address
    )


async def test_malformed_typed_data_names_the_bad_path(
    server: LiveServer, signer: DevSigner
) -> None:
    token, _ = await new_wallet(server, signer, "alice", None)
    bad_wallet = json.loads(json.dumps(MAIL))
    bad_wallet["message"]["to"]["wallet"] = "0x1234"
    missing = json.loads(json.dumps(MAIL))
    del missing["message"]["contents"]
    no_primary = {**MAIL, "primaryType": "Letter"}
    overflow = json.loads(json.dumps(MAIL))
    overflow["domain"]["chainId"] = -1
    for data, path in (
        (bad_wallet, "typedData.message.to.wallet"),
        (missing, "typedData.message.contents"),
        (no_primary, "typedData.primaryType"),
        (overflow, "typedData.domain.chainId"),
        ("not json", "typedData"),
        ([1, 2], "typedData"),
    ):
        body = await server.graphql(
            SIGN_TYPED, {"i": {"typedData": data, "password": PASSWORD}}, token=token
        )
        assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": path}, body


async def test_wrong_password_is_rejected(server: LiveServer, signer: DevSigner) -> None:
    token, _ = await new_wallet(server, signer, "alice", None)
    body = await server.graphql(
        SIGN_MESSAGE, {"i": {"message": "hi", "password": "not my password"}}, token=token
    )
    assert only_error(body)["extensions"] == {"code": "WRONG_PASSWORD", "field": "password"}


async def test_signing_before_create_user_is_not_found(
    server: LiveServer, signer: DevSigner
) -> None:
    body = await server.graphql(
        SIGN_MESSAGE, {"i": {"message": "hi", "password": PASSWORD}}, token=signer.mint("ghost")
    )
    assert error_codes(body) == ["NOT_FOUND"]


async def test_failed_passwords_are_limited_across_server_instances(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, password_max_failures=3)
    signer = DevSigner(tmp_path)
    wrong = {"i": {"message": "hi", "password": "not my password"}}
    right = {"i": {"message": "hi", "password": PASSWORD}}
    async with (
        LiveServer(create_app(settings)) as first,
        LiveServer(create_app(settings)) as second,
    ):
        token, _ = await new_wallet(first, signer, "alice", None)
        for server in (first, second, first):
            assert error_codes(await server.graphql(SIGN_MESSAGE, wrong, token=token)) == [
                "WRONG_PASSWORD"
            ]
        for server in (second, first):
            error = only_error(await server.graphql(SIGN_MESSAGE, right, token=token))
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert 0 < error["extensions"]["retryAfter"] <= 900
        # Another user is not affected.
        other, _ = await new_wallet(second, signer, "bob", None)
        assert "errors" not in await second.graphql(SIGN_MESSAGE, right, token=other)


async def test_change_password_keeps_the_address_and_retires_the_old_password(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    change = """mutation($i: ChangePasswordInput!) {
      changePassword(input: $i) { wallet { address } }
    }"""
    weak = await server.graphql(
        change, {"i": {"currentPassword": PASSWORD, "newPassword": "short"}}, token=token
    )
    assert only_error(weak)["extensions"] == {"code": "WEAK_PASSWORD", "field": "newPassword"}
    wrong = await server.graphql(
        change,
        {"i": {"currentPassword": "nope nope", "newPassword": "new password 2"}},
        token=token,
    )
    assert only_error(wrong)["extensions"] == {"code": "WRONG_PASSWORD", "field": "currentPassword"}
    body = await server.graphql(
        change, {"i": {"currentPassword": PASSWORD, "newPassword": "new password 2"}}, token=token
    )
    assert body["data"]["changePassword"]["wallet"]["address"] == address
    old = await server.graphql(
        SIGN_MESSAGE, {"i": {"message": "hi", "password": PASSWORD}}, token=token
    )
    assert error_codes(old) == ["WRONG_PASSWORD"]
    new = await server.graphql(
        SIGN_MESSAGE, {"i": {"message": "hi", "password": "new password 2"}}, token=token
    )
    assert new["data"]["signMessage"]["address"] == address


async def test_export_wallet_gives_a_keystore_that_decrypts_to_the_same_key(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    body = await server.graphql(
        "mutation($p: String!) { exportWallet(password: $p) }", {"p": PASSWORD}, token=token
    )
    keystore = body["data"]["exportWallet"]
    assert keystore["version"] == 3
    assert keystore["address"].lower() == address[2:].lower()
    key = Account.decrypt(keystore, PASSWORD)
    assert Account.from_key(key).address == address


async def test_export_wallet_needs_a_recent_login(server: LiveServer, signer: DevSigner) -> None:
    await new_wallet(server, signer, "alice", None)
    stale = signer.mint("alice", iat=int(time.time()) - 600)
    body = await server.graphql(
        "mutation($p: String!) { exportWallet(password: $p) }", {"p": PASSWORD}, token=stale
    )
    assert error_codes(body) == ["FORBIDDEN"]


async def test_me_still_answers_while_twenty_signings_run(
    server: LiveServer, signer: DevSigner
) -> None:
    token, _ = await new_wallet(server, signer, "alice", None)
    signings = [
        asyncio.create_task(
            server.graphql(
                SIGN_MESSAGE, {"i": {"message": f"m{i}", "password": PASSWORD}}, token=token
            )
        )
        for i in range(20)
    ]
    await asyncio.sleep(0.05)  # let the signings reach the KDF
    me = await server.graphql("{ me { sub } }", token=token)
    assert me == {"data": {"me": {"sub": "alice"}}}
    assert not all(task.done() for task in signings), "me answered while signings were running"
    results = await asyncio.gather(*signings)
    assert all("errors" not in r for r in results)
