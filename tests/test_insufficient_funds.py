"""A wallet that cannot pay gets INSUFFICIENT_FUNDS with ``needed`` (value + gas limit * max
fee) and ``available``, from signTransaction and submitTransaction alike, on the in-process
chain and on anvil, whatever the node raises while estimating gas; nothing is stored and no
nonce is reserved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import rlp  # type: ignore[import-untyped]
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from testkit.anvil import Anvil
from testkit.env import PipelineSettings, chain_of, make_settings
from testkit.graphql import bearer, only_error
from testkit.pipeline import PASSWORD, new_wallet, submit, wait_for
from testkit.server import LiveServer
from walletql.app import create_app
from walletql.devauth import DevSigner

DEAD = "0x000000000000000000000000000000000000dEaD"
SIGN = "mutation($i: SignTransactionInput!) { signTransaction(input: $i) { hash nonce } }"
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id nonce } }"
MUTATIONS = {"signTransaction": SIGN, "submitTransaction": SUBMIT}
LISTED = "{ transactions { edges { node { id } } } }"
BALANCE = "{ balance { wei } }"
GAS = 21_000  # a plain transfer to an account without code


@pytest.fixture(params=["embedded", "anvil"])
async def dev_server(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[LiveServer]:
    """walletql on the in-process chain or on anvil; new wallets start empty."""
    chains = {}
    if request.param == "anvil":
        node: Anvil = request.getfixturevalue("anvil")
        chains = {"chains": [chain_of(node)]}
    settings = make_settings(tmp_path, database_url, faucet_wei=0, **chains)
    async with LiveServer(create_app(settings)) as live:
        yield live


async def wallet(server: LiveServer, signer: DevSigner, sub: str, wei: int) -> str:
    """A new user's token; its wallet holds ``wei``."""
    token, address = await new_wallet(server, signer, sub, None)
    if wei:
        await give(server, token, address, wei)
    return token


async def give(server: LiveServer, token: str, address: str, wei: int) -> None:
    """Fund ``address`` through the dev faucet (the in-process chain or anvil)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.url}/dev/faucet",
            json={"address": address, "wei": str(wei)},
            headers=bearer(token),
        )
    assert response.status_code == 200, response.text


async def balance(server: LiveServer, token: str) -> int:
    return int((await server.graphql(BALANCE, token=token))["data"]["balance"]["wei"])


async def cannot_pay(server: LiveServer, token: str, mutation: str, value: int) -> tuple[int, int]:
    """(needed, available) from the error, after checking its code and message."""
    body = await server.graphql(
        MUTATIONS[mutation],
        {"i": {"to": DEAD, "value": str(value), "password": PASSWORD}},
        token=token,
    )
    error = only_error(body)
    assert error["extensions"]["code"] == "INSUFFICIENT_FUNDS", error
    assert "Traceback" not in error["message"]
    return int(error["extensions"]["needed"]), int(error["extensions"]["available"])


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_more_than_the_balance_needs_the_value_and_the_gas(
    dev_server: LiveServer, signer: DevSigner, mutation: str
) -> None:
    token = await wallet(dev_server, signer, "alice", 10**18)
    held = await balance(dev_server, token)
    needed, available = await cannot_pay(dev_server, token, mutation, held)
    assert available == held
    gas_cost = needed - held
    assert gas_cost > 0
    assert gas_cost % GAS == 0  # gas limit * max fee per gas
    assert (await dev_server.graphql(LISTED, token=token))["data"]["transactions"]["edges"] == []


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_an_empty_wallet_needs_the_gas_even_for_no_value(
    dev_server: LiveServer, signer: DevSigner, mutation: str
) -> None:
    token = await wallet(dev_server, signer, "bob", 0)
    needed, available = await cannot_pay(dev_server, token, mutation, 0)
    assert available == 0
    assert needed > 0
    assert needed % GAS == 0
    needed_with_value, _ = await cannot_pay(dev_server, token, mutation, 5)
    assert needed_with_value > 5


async def test_funded_to_what_was_needed_the_same_request_goes_through(
    dev_server: LiveServer, signer: DevSigner
) -> None:
    token = await wallet(dev_server, signer, "carol", 0)
    needed, _ = await cannot_pay(dev_server, token, "signTransaction", 1000)
    await cannot_pay(dev_server, token, "submitTransaction", 1000)
    me = await dev_server.graphql("{ me { wallet { address } } }", token=token)
    # Twice as much: the base fee may move between the refusal and the retry.
    await give(dev_server, token, me["data"]["me"]["wallet"]["address"], 2 * needed)
    body = await dev_server.graphql(
        SIGN, {"i": {"to": DEAD, "value": "1000", "password": PASSWORD}}, token=token
    )
    # The refusals reserved nothing: the first signature takes nonce 0.
    assert body["data"]["signTransaction"]["nonce"] == "0", body


# Init code of a contract that stores the value it receives: a call with value costs a
# storage write (over 20,000 gas) that the same call without value does not.
STORES_VALUE = "0x600b600c600039600b6000f3" + "3415600957346000555b00"


async def test_a_call_whose_gas_grows_with_its_value_is_not_signed_with_the_gas_of_no_value(
    pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(None, faucet_wei=0)  # the in-process chain
    async with LiveServer(create_app(settings, run_worker=True)) as server:
        deployer = await wallet(server, signer, "deployer", 10**18)
        deployment = await submit(server, deployer, to=None, value="0", data=STORES_VALUE)
        await wait_for(server, deployer, deployment["id"], "CONFIRMED")
        sender = bytes.fromhex(deployment["from"][2:])
        contract = to_checksum_address(keccak(rlp.encode([sender, int(deployment["nonce"])]))[12:])
        # Enough for the value and 40,000 gas at 1 gwei: the call without value would fit, the
        # call with value needs more gas.
        fee, value = 10**9, 1000
        token = await wallet(server, signer, "alice", value + 40_000 * fee)
        body = await server.graphql(
            SIGN,
            {"i": {"to": contract, "value": str(value), "password": PASSWORD,
                   "maxFeePerGas": str(fee), "maxPriorityFeePerGas": str(fee)}},
            token=token,
        )  # fmt: skip
    error = only_error(body)
    assert error["extensions"]["code"] == "INSUFFICIENT_FUNDS", body
    gas = (int(error["extensions"]["needed"]) - value) // fee
    assert gas > 41_000  # the storage write is counted
    assert int(error["extensions"]["available"]) == value + 40_000 * fee
