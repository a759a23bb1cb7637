"""signTransaction and submitTransaction take nonces from one reservation per wallet and chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import pipeline_settings
from testkit.pipeline import (
    PASSWORD,
    RECIPIENT,
    pipeline_server,
    submit,
    wait_for,
)
from testkit.pipeline import new_wallet as new_funded_wallet
from testkit.server import LiveServer
from walletql.devauth import DevSigner

SIGN = """mutation($i: SignTransactionInput!) { signTransaction(input: $i) { raw hash nonce } }"""


async def sign(server: LiveServer, token: str, value: int) -> dict[str, Any]:
    body = await server.graphql(
        SIGN, {"i": {"to": RECIPIENT, "value": str(value), "password": PASSWORD}}, token=token
    )
    assert "errors" not in body, body
    signed: dict[str, Any] = body["data"]["signTransaction"]
    return signed


async def test_signed_and_submitted_transactions_mixed_are_all_mined(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    settings = pipeline_settings(tmp_path, database_url, anvil)
    signer = DevSigner(tmp_path)
    # No worker yet: the first submit stays QUEUED, so the chain's pending nonce is still 0
    # when signTransaction runs. It must not take the nonce that the submit reserved.
    async with pipeline_server(settings, run_worker=False) as server:
        token, address = await new_funded_wallet(server, signer, "alice", anvil_w3)
        first = await submit(server, token)
        signed = await sign(server, token, 777)
        second = await submit(server, token)
    assert [int(first["nonce"]), int(signed["nonce"]), int(second["nonce"])] == [0, 1, 2]

    async with pipeline_server(settings) as server:
        # The self-broadcast goes out while the managed ones are still in the queue.
        assert (await anvil_w3.eth.send_raw_transaction(signed["raw"])).to_0x_hex() == signed[
            "hash"
        ]
        for queued in (first, second):
            await wait_for(server, token, queued["id"], "CONFIRMED")
        listed = await server.graphql(
            "{ transactions(first: 10) { edges { node { status nonce } } } }", token=token
        )
    receipt = await anvil_w3.eth.wait_for_transaction_receipt(signed["hash"])
    assert receipt["status"] == 1
    assert await anvil_w3.eth.get_transaction_count(address) == 3
    statuses = {
        e["node"]["nonce"]: e["node"]["status"] for e in listed["data"]["transactions"]["edges"]
    }
    assert statuses == {"0": "CONFIRMED", "2": "CONFIRMED"}


async def test_an_explicit_nonce_is_signed_as_given_and_reserves_nothing(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    settings = pipeline_settings(tmp_path, database_url, anvil)
    async with pipeline_server(settings, run_worker=False) as server:
        token, _ = await new_funded_wallet(server, DevSigner(tmp_path), "alice", anvil_w3)
        body = await server.graphql(
            SIGN, {"i": {"to": RECIPIENT, "nonce": 5, "password": PASSWORD}}, token=token
        )
        queued = await submit(server, token)
    assert body["data"]["signTransaction"]["nonce"] == "5"
    assert queued["nonce"] == "0"
