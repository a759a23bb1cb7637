"""What a wallet UI reads: the live attempt's fees, the cancel shown plainly, fee and block
facts, the chain's currency and explorer, the signed fields, fee estimates, deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import pipeline_settings
from testkit.pipeline import (
    PASSWORD,
    RECIPIENT,
    Submitted,
    mine,
    new_wallet,
    one_submitted,
    pipeline_server,
    submit,
)
from walletql.devauth import DevSigner

EXPLORER = "https://explorer.example/tx/{hash}"
TRUTH = """query($id: ID!) { transaction(id: $id) {
  status to value type hash maxFeePerGas maxPriorityFeePerGas gasPrice
  blockNumber blockHash gasUsed effectiveGasPrice fee minedAt confirmedAt explorerUrl
  replacedByCancel liveAttempt { kind rung hash maxFeePerGas }
  attempts { kind rung hash maxFeePerGas maxPriorityFeePerGas gasPrice sentAt }
} }"""


def chain_settings(tmp_path: Path, database_url: str, node: Anvil, **chain: Any) -> Any:
    return pipeline_settings(
        tmp_path, database_url, node,
        chain={"explorer_tx_url": EXPLORER, "native_currency_symbol": "TST", **chain},
    )  # fmt: skip


async def truth(alice: Submitted) -> dict[str, Any]:
    body = await alice.server.graphql(TRUTH, {"id": alice.tx["id"]}, token=alice.token)
    assert "errors" not in body, body
    tx: dict[str, Any] = body["data"]["transaction"]
    return tx


async def mutate(alice: Submitted, name: str) -> None:
    body = await alice.server.graphql(
        f"mutation($id: ID!) {{ {name}(id: $id) {{ id }} }}",
        {"id": alice.tx["id"]},
        token=alice.token,
    )
    assert "errors" not in body, body


async def test_a_bumped_transaction_shows_the_fees_of_the_mined_bump(
    tmp_path: Path, database_url: str, manual_anvil: tuple[Anvil, AsyncWeb3[Any]]
) -> None:
    node, w3 = manual_anvil
    settings = chain_settings(tmp_path, database_url, node)
    async with one_submitted(settings, DevSigner(tmp_path), w3) as alice:
        await alice.wait("SUBMITTED")
        await mutate(alice, "speedUpTransaction")
        pending = await truth(alice)
        await mine(w3)
        await alice.wait("CONFIRMED")
        done = await truth(alice)

    original, bump = pending["attempts"]
    assert [(a["kind"], a["rung"]) for a in (original, bump)] == [("SEND", 0), ("SEND", 1)]
    assert int(bump["maxFeePerGas"]) > int(original["maxFeePerGas"])
    # While pending, and once mined: the bump's hash and fees, not rung 0's.
    for tx in (pending, done):
        assert tx["hash"] == bump["hash"]
        assert tx["liveAttempt"] == {
            "kind": "SEND", "rung": 1, "hash": bump["hash"], "maxFeePerGas": bump["maxFeePerGas"]
        }  # fmt: skip
        assert tx["maxFeePerGas"] == bump["maxFeePerGas"]
        assert tx["maxPriorityFeePerGas"] == bump["maxPriorityFeePerGas"]
        assert tx["replacedByCancel"] is False
    assert pending["fee"] is None
    assert pending["minedAt"] is None

    mined = await w3.eth.get_transaction(done["hash"])
    receipt = await w3.eth.get_transaction_receipt(done["hash"])
    assert mined["maxFeePerGas"] == int(done["maxFeePerGas"])
    assert done["type"] == "EIP1559"
    assert done["blockHash"] == receipt["blockHash"].to_0x_hex()
    assert int(done["fee"]) == receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert done["minedAt"] is not None
    assert done["confirmedAt"] is not None
    assert done["minedAt"] <= done["confirmedAt"]
    assert done["explorerUrl"] == EXPLORER.replace("{hash}", done["hash"])


async def test_a_cancelled_transaction_says_a_cancel_replaced_it(
    tmp_path: Path, database_url: str, manual_anvil: tuple[Anvil, AsyncWeb3[Any]]
) -> None:
    node, w3 = manual_anvil
    settings = chain_settings(tmp_path, database_url, node)
    async with one_submitted(settings, DevSigner(tmp_path), w3, value="4242") as alice:
        await alice.wait("SUBMITTED")
        await mutate(alice, "cancelTransaction")
        await mine(w3)
        await alice.wait("CANCELLED")
        done = await truth(alice)

    cancel = done["attempts"][-1]
    assert cancel["kind"] == "CANCEL"
    assert done["replacedByCancel"] is True
    # What was asked stays; what the chain holds is the cancel.
    assert (done["to"], done["value"]) == (RECIPIENT, "4242")
    assert done["hash"] == cancel["hash"] == done["liveAttempt"]["hash"]
    assert done["maxFeePerGas"] == cancel["maxFeePerGas"]
    mined = await w3.eth.get_transaction(done["hash"])
    assert (mined["to"], mined["value"]) == (alice.address, 0)


async def test_chains_carry_their_currency_and_explorer(
    tmp_path: Path, database_url: str, anvil: Anvil
) -> None:
    settings = chain_settings(tmp_path, database_url, anvil, native_currency_decimals=6)
    async with pipeline_server(settings, run_worker=False) as server:
        body = await server.graphql(
            "{ chains { chainId nativeCurrency { symbol decimals } explorerTxUrl } }",
            token=DevSigner(tmp_path).mint("alice"),
        )
    assert body["data"]["chains"] == [
        {
            "chainId": anvil.chain_id,
            "nativeCurrency": {"symbol": "TST", "decimals": 6},
            "explorerTxUrl": EXPLORER,
        }
    ]


async def test_sign_returns_what_it_signed_and_estimate_matches_a_submit(
    tmp_path: Path, database_url: str, manual_anvil: tuple[Anvil, AsyncWeb3[Any]]
) -> None:
    node, w3 = manual_anvil
    settings = chain_settings(tmp_path, database_url, node)
    async with pipeline_server(settings, run_worker=False) as server:
        token, address = await new_wallet(server, DevSigner(tmp_path), "alice", w3)
        estimate = await server.graphql(
            "{ estimateFees { chainId type baseFeePerGas maxFeePerGas maxPriorityFeePerGas "
            "gasPrice gas maxCost } }",
            token=token,
        )
        signed = await server.graphql(
            """mutation($i: SignTransactionInput!) { signTransaction(input: $i) {
                 to value data gas type maxFeePerGas maxPriorityFeePerGas gasPrice } }""",
            {"i": {"to": RECIPIENT, "value": "99", "data": "0x", "password": PASSWORD}},
            token=token,
        )
        submitted = await truth(Submitted(server, token, address, await submit(server, token)))
    fees = estimate["data"]["estimateFees"]
    block = await w3.eth.get_block("latest")
    assert fees["chainId"] == node.chain_id
    assert fees["type"] == "EIP1559"
    assert int(fees["baseFeePerGas"]) == block["baseFeePerGas"]
    assert fees["gas"] == "21000"
    assert int(fees["maxCost"]) == 21000 * int(fees["maxFeePerGas"])
    assert fees["gasPrice"] is None
    # No block was mined in between: a submit uses exactly the estimated caps.
    assert submitted["maxFeePerGas"] == fees["maxFeePerGas"]
    assert submitted["maxPriorityFeePerGas"] == fees["maxPriorityFeePerGas"]
    assert signed["data"]["signTransaction"] == {
        "to": RECIPIENT, "value": "99", "data": "0x", "gas": "21000", "type": "EIP1559",
        "maxFeePerGas": fees["maxFeePerGas"], "maxPriorityFeePerGas": fees["maxPriorityFeePerGas"],
        "gasPrice": None,
    }  # fmt: skip


# Init code that deploys a contract whose runtime code returns 42 for any call.
INIT_CODE = "0x600a600c600039600a6000f3602a60005260206000f3"


async def test_a_transaction_without_to_deploys_a_contract(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    settings = chain_settings(tmp_path, database_url, anvil)
    signer = DevSigner(tmp_path)
    async with one_submitted(
        settings, signer, anvil_w3, to=None, value="0", data=INIT_CODE
    ) as alice:
        done = await alice.wait("CONFIRMED")
    assert done["to"] is None
    receipt = await anvil_w3.eth.get_transaction_receipt(done["hash"])
    contract = receipt["contractAddress"]
    assert contract is not None
    answer = await anvil_w3.eth.call({"to": contract, "data": b""})
    assert int.from_bytes(answer, "big") == 42
