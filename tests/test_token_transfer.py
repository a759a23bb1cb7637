"""transferToken: an ERC-20 transfer through the managed pipeline, on a real OpenZeppelin token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.contracts import deploy_erc20, erc20, mint_erc20
from testkit.env import pipeline_settings
from testkit.graphql import error_codes
from testkit.pipeline import PASSWORD, new_wallet, pipeline_server, wait_for
from walletql.devauth import DevSigner

BOB = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRANSFER = """mutation($i: TransferTokenInput!) {
  transferToken(input: $i) { id status to value tokenTransfer { token symbol decimals amount to } }
}"""


async def test_transfer_token_moves_tokens_and_the_transaction_says_so(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    deployer = anvil.private_keys[0]
    token_address = await deploy_erc20(anvil_w3, deployer, "Test Dollar", "TUSD")
    settings = pipeline_settings(tmp_path, database_url, anvil)
    async with pipeline_server(settings) as server:
        token, alice = await new_wallet(server, DevSigner(tmp_path), "alice", anvil_w3)
        await mint_erc20(anvil_w3, token_address, deployer, alice, 10 * 10**18)
        pay_bob = {"token": token_address, "to": BOB, "amount": str(3 * 10**18),
                   "password": PASSWORD, "idempotencyKey": "pay-bob-1"}  # fmt: skip
        body = await server.graphql(TRANSFER, {"i": pay_bob}, token=token)
        assert "errors" not in body, body
        queued = body["data"]["transferToken"]
        done = await wait_for(server, token, queued["id"], "CONFIRMED")
        again = await server.graphql(TRANSFER, {"i": pay_bob}, token=token)
    assert queued["tokenTransfer"] == {
        "token": token_address, "symbol": "TUSD", "decimals": 18, "amount": str(3 * 10**18),
        "to": BOB,
    }  # fmt: skip
    assert (queued["to"], queued["value"]) == (token_address, "0")
    assert done["status"] == "CONFIRMED"
    assert again["data"]["transferToken"]["id"] == queued["id"]  # the same key, the same tx
    contract = erc20(anvil_w3, token_address)
    assert await contract.functions.balanceOf(alice).call() == 7 * 10**18
    assert await contract.functions.balanceOf(BOB).call() == 3 * 10**18


async def test_a_transfer_the_token_would_refuse_is_rejected_before_queueing(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    token_address = await deploy_erc20(anvil_w3, anvil.private_keys[0], "Test Dollar", "TUSD")
    settings = pipeline_settings(tmp_path, database_url, anvil)
    async with pipeline_server(settings, run_worker=False) as server:
        token, _ = await new_wallet(server, DevSigner(tmp_path), "alice", anvil_w3)
        body = await server.graphql(
            TRANSFER,
            {"i": {"token": token_address, "to": BOB, "amount": "1", "password": PASSWORD}},
            token=token,
        )
        listed = await server.graphql("{ transactions { edges { node { id } } } }", token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"]  # the token reverts: no balance
    assert listed["data"]["transactions"]["edges"] == []
