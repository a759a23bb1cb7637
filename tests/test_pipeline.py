"""submit -> queue -> worker -> chain, against anvil over HTTP and the Postgres queue."""

from __future__ import annotations

import asyncio
from typing import Any

from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.contracts import deploy_erc20
from testkit.env import PipelineSettings
from testkit.graphql import error_codes, only_error
from testkit.pipeline import (
    PASSWORD,
    RECIPIENT,
    SUBMIT,
    Submitted,
    fetch,
    fund,
    mine,
    new_wallet,
    one_submitted,
    pipeline_server,
    submit,
    wait_for,
)
from walletql.devauth import DevSigner
from walletql.settings import Settings


async def test_submit_reaches_confirmed_with_confirmations_counted_by_blocks(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(anvil, chain={"confirmations": 3})
    async with pipeline_server(settings) as server:
        token, address = await new_wallet(server, signer, "alice", anvil_w3)
        before = await anvil_w3.eth.get_balance(RECIPIENT)
        queued = await submit(server, token, value="12345")
        assert queued["status"] == "QUEUED"
        mined = await wait_for(server, token, queued["id"], "MINED")
        assert mined["confirmations"] == 1
        await mine(anvil_w3, 2)
        done = await wait_for(server, token, queued["id"], "CONFIRMED")
    assert [e["status"] for e in done["events"]] == ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]
    assert [e["seq"] for e in done["events"]] == ["1", "2", "3", "4"]
    receipt = await anvil_w3.eth.get_transaction_receipt(done["hash"])
    assert receipt["from"] == address
    assert receipt["blockNumber"] == int(done["blockNumber"])
    assert done["gasUsed"] == "21000"
    assert done["hashes"] == [done["hash"]]
    assert await anvil_w3.eth.get_balance(RECIPIENT) - before == 12345


async def test_insufficient_funds_fails_at_once_and_stores_nothing(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with pipeline_server(anvil_settings) as server:
        token, _ = await new_wallet(server, signer, "alice", anvil_w3, ether=1)
        body = await server.graphql(
            SUBMIT,
            {"i": {"to": RECIPIENT, "value": str(2 * 10**18), "password": PASSWORD}},
            token=token,
        )
        error = only_error(body)
        assert error["extensions"]["code"] == "INSUFFICIENT_FUNDS"
        assert int(error["extensions"]["needed"]) > 2 * 10**18
        listed = await server.graphql("{ transactions { edges { node { id } } } }", token=token)
        assert listed["data"]["transactions"]["edges"] == []


async def test_idempotency_key_returns_the_same_transaction_or_conflicts(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with pipeline_server(anvil_settings) as server:
        token, _ = await new_wallet(server, signer, "alice", anvil_w3)
        first = await submit(server, token, idempotencyKey="order-1")
        again = await submit(server, token, idempotencyKey="order-1")
        assert again["id"] == first["id"]
        body = await server.graphql(
            SUBMIT,
            {
                "i": {
                    "to": RECIPIENT,
                    "value": "999",
                    "password": PASSWORD,
                    "idempotencyKey": "order-1",
                }
            },
            token=token,
        )
        assert only_error(body)["extensions"] == {
            "code": "IDEMPOTENCY_CONFLICT",
            "field": "idempotencyKey",
        }


async def test_fifty_concurrent_submits_with_one_key_make_one_transaction(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with pipeline_server(anvil_settings, run_worker=False) as server:
        token, _ = await new_wallet(server, signer, "alice", anvil_w3)
        results = await asyncio.gather(
            *(submit(server, token, idempotencyKey="same") for _ in range(50))
        )
        listed = await server.graphql(
            "{ transactions(first: 100) { edges { node { id nonce } } } }", token=token
        )
    assert len({r["id"] for r in results}) == 1
    assert [e["node"]["id"] for e in listed["data"]["transactions"]["edges"]] == [results[0]["id"]]


async def test_pending_transaction_is_bumped_and_the_bumped_hash_is_mined(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    node, w3 = manual_anvil
    settings = pipeline(node, chain={"bump_interval_seconds": 1})
    async with one_submitted(settings, signer, w3) as alice:
        bumped = await alice.wait("SUBMITTED", reason="FEE_BUMP: ")
        assert bumped["hash"] != alice.tx["hash"]
        assert bumped["hashes"][:2] == [alice.tx["hash"], bumped["hash"]]
        await mine(w3)
        done = await alice.wait("CONFIRMED")
    assert done["hash"] in done["hashes"][1:]  # a bumped rung was mined, not the original
    mined = await w3.eth.get_transaction(done["hash"])
    # The fees shown are the mined rung's (test_transaction_fields checks each bump raises them).
    assert mined["maxFeePerGas"] == int(done["maxFeePerGas"])
    assert int(done["maxFeePerGas"]) >= int(bumped["maxFeePerGas"])


async def test_deadline_sends_the_cancel_and_expires_then_the_wallet_still_works(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    node, w3 = manual_anvil
    settings = pipeline(node, chain={"deadline_seconds": 1})
    async with one_submitted(settings, signer, w3) as alice:
        await alice.wait("SUBMITTED", reason="DEADLINE")
        await mine(w3)
        expired = await alice.wait("EXPIRED")
        cancel = await w3.eth.get_transaction(expired["hash"])
        assert cancel["to"] == alice.address
        assert cancel["value"] == 0
        later = await submit(alice.server, alice.token)
        assert int(later["nonce"]) == int(alice.tx["nonce"]) + 1
        await asyncio.sleep(0.5)
        await mine(w3)
        await wait_for(alice.server, alice.token, later["id"], "CONFIRMED")


async def test_revert_fails_with_the_decoded_reason(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    token_address = await deploy_erc20(anvil_w3, anvil.private_keys[0], "Test Dollar", "TUSD")
    # transfer(RECIPIENT, 1 token) from a wallet that holds none reverts in the contract.
    data = "0xa9059cbb" + RECIPIENT[2:].lower().rjust(64, "0") + hex(10**18)[2:].rjust(64, "0")
    async with one_submitted(
        anvil_settings, signer, anvil_w3, to=token_address, value="0", data=data, gas="100000"
    ) as alice:
        failed = await alice.wait("FAILED")
    assert failed["error"]["code"] == "REVERTED"
    assert "transfer amount exceeds balance" in failed["error"]["message"]
    assert failed["events"][-1]["reason"].startswith("REVERTED")


async def test_speed_up_and_cancel_on_request(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    _, w3 = manual_anvil
    await manual_alice.wait("SUBMITTED")
    sped = await manual_alice.server.graphql(
        "mutation($id: ID!) { speedUpTransaction(id: $id) { hash status } }",
        {"id": manual_alice.tx["id"]},
        token=manual_alice.token,
    )
    assert sped["data"]["speedUpTransaction"]["hash"] != manual_alice.tx["hash"]
    cancelled = await manual_alice.server.graphql(
        "mutation($id: ID!) { cancelTransaction(id: $id) { status } }",
        {"id": manual_alice.tx["id"]},
        token=manual_alice.token,
    )
    assert cancelled["data"]["cancelTransaction"]["status"] == "SUBMITTED"
    again = await manual_alice.server.graphql(
        "mutation($id: ID!) { cancelTransaction(id: $id) { status } }",
        {"id": manual_alice.tx["id"]},
        token=manual_alice.token,
    )
    assert error_codes(again) == ["BAD_USER_INPUT"]
    await mine(w3)
    done = await manual_alice.wait("CANCELLED")
    assert len(done["hashes"]) == 3  # original, one bump, the cancel


async def test_someone_elses_transaction_is_not_found(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with one_submitted(anvil_settings, signer, anvil_w3, run_worker=False) as alice:
        mallory, _ = await new_wallet(alice.server, signer, "mallory", None)
        body = await alice.server.graphql(
            "query($id: ID!) { transaction(id: $id) { id } }", {"id": alice.tx["id"]}, token=mallory
        )
        assert error_codes(body) == ["NOT_FOUND"]
        body = await alice.server.graphql('{ transaction(id: "nope") { id } }', token=alice.token)
        assert only_error(body)["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


async def test_transactions_paginate_with_cursors_and_filter_by_status(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with pipeline_server(anvil_settings, run_worker=False) as server:
        token, _ = await new_wallet(server, signer, "alice", anvil_w3)
        ids = [(await submit(server, token))["id"] for _ in range(5)]
        page = (
            "query($a: String) { transactions(first: 2, after: $a) "
            "{ edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"
        )
        seen: list[str] = []
        after = None
        while True:
            body = (await server.graphql(page, {"a": after}, token=token))["data"]["transactions"]
            seen += [e["node"]["id"] for e in body["edges"]]
            if not body["pageInfo"]["hasNextPage"]:
                break
            after = body["pageInfo"]["endCursor"]
        assert seen == list(reversed(ids))
        queued = await server.graphql(
            "{ transactions(status: QUEUED) { edges { node { id } } } }", token=token
        )
        assert len(queued["data"]["transactions"]["edges"]) == 5
        mined = await server.graphql(
            "{ transactions(status: MINED) { edges { node { id } } } }", token=token
        )
        assert mined["data"]["transactions"]["edges"] == []
        bad = await server.graphql(
            '{ transactions(after: "garbage!") { edges { cursor } } }', token=token
        )
        assert only_error(bad)["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_a_rejected_transactions_nonce_is_filled_by_its_cancel(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(anvil, worker_concurrency=1)
    async with pipeline_server(settings, run_worker=False) as api:
        token, address = await new_wallet(api, signer, "alice", anvil_w3, ether=1)
        # Each passes the preflight alone; together they need more than the wallet holds.
        first = await submit(api, token, value=str(6 * 10**17))
        second = await submit(api, token, value=str(6 * 10**17))
        async with pipeline_server(settings):  # one worker, taking them in order
            await wait_for(api, token, first["id"], "CONFIRMED")
            failed = await wait_for(api, token, second["id"], "FAILED")
            third = await submit(api, token, value="1000")
            await wait_for(api, token, third["id"], "CONFIRMED")
            failed = await fetch(api, token, second["id"])
    assert failed["error"]["code"] == "REJECTED"
    assert "insufficient funds" in failed["error"]["message"].lower()
    # The second's nonce was consumed by its cancel: a 0-value send to self.
    filled = await anvil_w3.eth.get_transaction(failed["hashes"][-1])
    assert (filled["to"], filled["value"], filled["nonce"]) == (address, 0, int(second["nonce"]))
    assert int(third["nonce"]) == int(second["nonce"]) + 1


async def test_later_transactions_wait_with_nonce_gap_until_the_wallet_is_funded(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(anvil, worker_concurrency=1)
    fees = {"gas": "21000", "maxFeePerGas": str(3 * 10**9), "maxPriorityFeePerGas": "1"}
    async with pipeline_server(settings, run_worker=False) as api:
        token, address = await new_wallet(api, signer, "alice", anvil_w3, ether=1)
        balance = await anvil_w3.eth.get_balance(address)
        # The first leaves too little for the second, and for the second's cancel.
        first = await submit(api, token, value=str(balance - 21_000 * 3 * 10**9), **fees)
        second = await submit(api, token, value="1", **fees)
        third = await submit(api, token, value="1", **fees)
        async with pipeline_server(settings):
            await wait_for(api, token, first["id"], "CONFIRMED")
            await wait_for(api, token, second["id"], "FAILED")
            waiting = await wait_for(api, token, third["id"], "QUEUED", reason="NONCE_GAP")
            assert "needs at least" in waiting["events"][-1]["reason"]
            await fund(anvil_w3, address, 10**18)
            await wait_for(api, token, third["id"], "CONFIRMED")
    assert await anvil_w3.eth.get_transaction_count(address) == int(third["nonce"]) + 1
