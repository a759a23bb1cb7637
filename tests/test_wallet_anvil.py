"""Balances and signing against a real JSON-RPC node (anvil)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.contracts import deploy_erc20, mint_erc20
from testkit.env import chain_of, make_settings
from testkit.graphql import error_codes, only_error
from testkit.net import free_port
from testkit.pipeline import PASSWORD, RECIPIENT, new_wallet
from testkit.server import LiveServer
from walletql.app import create_app
from walletql.devauth import DevSigner

SIGN = """
mutation($i: SignTransactionInput!) {
  signTransaction(input: $i) { raw hash nonce from chainId type }
}
"""


async def test_balance_reads_the_node(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any], anvil: Anvil
) -> None:
    token, _ = await new_wallet(anvil_server, signer, "alice", anvil_w3, ether=3)
    body = await anvil_server.graphql("{ balance { chainId wei ether blockNumber } }", token=token)
    balance = body["data"]["balance"]
    assert balance["chainId"] == anvil.chain_id
    assert balance["wei"] == str(3 * 10**18)
    assert balance["ether"] == "3"
    assert int(balance["blockNumber"]) == await anvil_w3.eth.block_number


async def test_signed_transactions_broadcast_by_hand_are_mined(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any]
) -> None:
    token, address = await new_wallet(anvil_server, signer, "alice", anvil_w3)
    for tx_type, value in (("EIP1559", 12345), ("LEGACY", 67890)):
        body = await anvil_server.graphql(
            SIGN,
            {"i": {"to": RECIPIENT, "value": str(value), "password": PASSWORD, "type": tx_type}},
            token=token,
        )
        signed = body["data"]["signTransaction"]
        assert signed["type"] == tx_type
        assert signed["from"] == address
        # Nothing was broadcast by walletql.
        assert await anvil_w3.eth.get_transaction_count(address) == int(signed["nonce"])
        tx_hash = await anvil_w3.eth.send_raw_transaction(signed["raw"])
        assert tx_hash.to_0x_hex() == signed["hash"]
        receipt = await anvil_w3.eth.wait_for_transaction_receipt(tx_hash)
        mined = await anvil_w3.eth.get_transaction(tx_hash)
        assert receipt["status"] == 1
        assert mined["from"] == address
        assert mined["nonce"] == int(signed["nonce"])
        assert mined["value"] == value
        assert mined["type"] == {"EIP1559": 2, "LEGACY": 0}[tx_type]
    assert await anvil_w3.eth.get_transaction_count(address) == 2


async def test_given_fields_are_kept_as_given(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any]
) -> None:
    token, _ = await new_wallet(anvil_server, signer, "alice", anvil_w3)
    body = await anvil_server.graphql(
        SIGN,
        {
            "i": {
                "to": RECIPIENT, "password": PASSWORD, "nonce": "7", "gas": "50000",
                "maxFeePerGas": "3000000000", "maxPriorityFeePerGas": "1000000000",
                "data": "0xdeadbeef",
            }
        },
        token=token,
    )  # fmt: skip
    raw = body["data"]["signTransaction"]["raw"]
    decoded = Account.recover_transaction(raw)
    assert decoded == body["data"]["signTransaction"]["from"]
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    assert fields["nonce"] == 7
    assert fields["gas"] == 50000
    assert fields["maxFeePerGas"] == 3 * 10**9
    assert fields["data"] == bytes.fromhex("deadbeef")


async def test_token_balances_read_a_real_erc20_and_report_non_tokens(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any], anvil: Anvil
) -> None:
    token, address = await new_wallet(anvil_server, signer, "alice", anvil_w3)
    deployer = anvil.private_keys[0]
    erc20 = await deploy_erc20(anvil_w3, deployer, "Test Dollar", "TUSD")
    await mint_erc20(anvil_w3, erc20, deployer, address, 1234 * 10**16)
    query = """query($t: [Address!]!) {
      tokenBalances(tokens: $t) { token symbol decimals raw formatted error { code message } }
    }"""
    body = await anvil_server.graphql(query, {"t": [erc20, RECIPIENT]}, token=token)
    real, not_a_token = body["data"]["tokenBalances"]
    assert real == {
        "token": erc20, "symbol": "TUSD", "decimals": 18, "raw": str(1234 * 10**16),
        "formatted": "12.34", "error": None,
    }  # fmt: skip
    assert not_a_token["token"] == RECIPIENT
    assert not_a_token["error"]["code"] == "NOT_ERC20"
    assert not_a_token["raw"] is None


async def test_bad_values_are_rejected_naming_the_field(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any]
) -> None:
    token, _ = await new_wallet(anvil_server, signer, "alice", anvil_w3)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"value": "-1"}, "value"),
        ({"value": "1.5"}, "value"),
        ({"value": str(2**256)}, "value"),
        ({"value": 1.5}, "value"),
        ({"data": "0xabc"}, "data"),
        ({"data": "0xzz"}, "data"),
        ({"to": "0x1234"}, "to"),
        ({"to": RECIPIENT.replace("dEaD", "DEad")}, "to"),
        ({"gas": str(10**12)}, "gas"),
        ({"chainId": 999}, "chainId"),
        ({"type": "EIP2930"}, "type"),
        ({"gasPrice": "1", "type": "EIP1559"}, "gasPrice"),
    ]
    for extra, field in cases:
        body = await anvil_server.graphql(
            SIGN, {"i": {"to": RECIPIENT, "password": PASSWORD, **extra}}, token=token
        )
        error = only_error(body)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (extra, body)
        assert error["extensions"]["field"] == field, (extra, body)


async def test_literal_bad_value_names_the_field(
    anvil_server: LiveServer, signer: DevSigner, anvil_w3: AsyncWeb3[Any]
) -> None:
    token, _ = await new_wallet(anvil_server, signer, "alice", anvil_w3)
    query = (
        f'mutation {{ signTransaction(input: {{to: "{RECIPIENT}", password: "x", value: "-5"}}) '
        "{ hash } }"
    )
    error = only_error(await anvil_server.graphql(query, token=token))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "value"}


async def test_unreachable_chain_is_unavailable_within_bounded_time(
    tmp_path: Path, database_url: str
) -> None:
    dead = {"chain_id": 5, "name": "dead", "rpc_url": f"http://127.0.0.1:{free_port()}"}
    settings = make_settings(tmp_path, database_url, chains=[dead], chain_timeout_seconds=2)
    signer = DevSigner(tmp_path)
    async with LiveServer(create_app(settings)) as live:
        token = signer.mint("alice")
        await live.graphql(
            'mutation { createUser(input: {password: "long enough"}) { id } }', token=token
        )
        started = time.monotonic()
        body = await live.graphql("{ balance { wei } }", token=token)
        assert error_codes(body) == ["CHAIN_UNAVAILABLE"]
        assert time.monotonic() - started < 10  # bounded: the server did not hang
        assert (await live.graphql("{ me { id } }", token=token))["data"]["me"] is not None


async def test_a_node_that_stops_answering_is_unavailable_and_the_server_keeps_serving(
    tmp_path: Path, database_url: str
) -> None:
    # A listening socket that never answers: the worst case for a client.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    chain = {"chain_id": 6, "name": "silent", "rpc_url": f"http://127.0.0.1:{port}"}
    settings = make_settings(tmp_path, database_url, chains=[chain], chain_timeout_seconds=1)
    signer = DevSigner(tmp_path)
    try:
        async with LiveServer(create_app(settings)) as live:
            token = signer.mint("alice")
            await live.graphql(
                'mutation { createUser(input: {password: "long enough"}) { id } }', token=token
            )
            results = await asyncio.gather(
                live.graphql("{ balance { wei } }", token=token),
                live.graphql("{ me { id } }", token=token),
            )
            assert error_codes(results[0]) == ["CHAIN_UNAVAILABLE"]
            assert results[1]["data"]["me"] is not None
    finally:
        silent.close()


async def test_chains_lists_the_configured_chains(
    tmp_path: Path, database_url: str, anvil: Anvil
) -> None:
    second = {"chain_id": 10, "name": "other", "rpc_url": "http://127.0.0.1:1", "confirmations": 5}
    settings = make_settings(tmp_path, database_url, chains=[chain_of(anvil), second])
    async with LiveServer(create_app(settings)) as live:
        body = await live.graphql(
            "{ chains { chainId name confirmations isDefault } }",
            token=DevSigner(tmp_path).mint("a"),
        )
    assert body["data"]["chains"] == [
        {"chainId": 31337, "name": "anvil", "confirmations": 2, "isDefault": True},
        {"chainId": 10, "name": "other", "confirmations": 5, "isDefault": False},
    ]
