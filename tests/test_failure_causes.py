"""Failure causes reach the transaction's owner: a failed look is told at once (RETRYING, in
``error`` and an event), a dead letter carries the last error seen, a node's refusal shows in
its own words, and a nonce taken by someone else fails at once with NONCE_CONFLICT."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from web3 import AsyncWeb3

from db.models import Transaction, TransactionEvent
from db.unit_of_work import UnitsOfWork
from services.chains import Chain, Chains
from services.domain import TransactionStatus
from services.errors import BadUserInput, ChainUnavailable
from services.pipeline import TransactionProcessor
from services.queues.postgres import PostgresQueue
from services.rpc import RpcError
from testkit.anvil import Anvil
from testkit.net import free_port
from testkit.pipeline import (
    Submitted,
    fetch,
    fund,
    mine,
    new_wallet,
    pipeline_server,
    submit,
    wait_for,
)
from tests.test_processor import CONFIG, INTERVAL, NOW, PENDING, Case, FakeChain, _store
from walletql.devauth import DevSigner
from walletql.settings import Settings
from worker.runner import Worker, WorkerSettings


class NodeInTrouble(FakeChain):
    """A node that answers every receipt lookup with an error."""

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        raise RpcError(-32000, "header not found")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def _look(units: UnitsOfWork, tx_id: uuid.UUID) -> tuple[Transaction, list[str | None]]:
    async with units.begin() as uow:
        tx = await uow.session.get_one(Transaction, tx_id)
        events = await uow.session.scalars(
            select(TransactionEvent.reason)
            .where(TransactionEvent.transaction_id == tx_id)
            .order_by(TransactionEvent.seq)
        )
        return tx, list(events)


async def test_a_failed_look_is_told_at_once_and_the_dead_letter_carries_it(
    engine: AsyncEngine,
) -> None:
    units = UnitsOfWork(engine)
    tx_id = await _store(units, Case(TransactionStatus.SUBMITTED, row=PENDING))
    node = NodeInTrouble(CONFIG, 1.0)
    chains = Chains([CONFIG], 1.0, client=lambda config, timeout: node)
    processor = TransactionProcessor(chains, check_interval=INTERVAL, clock=lambda: NOW)
    queue = PostgresQueue(engine, f"causes-{uuid.uuid4().hex[:8]}")
    worker = Worker(units, queue, processor, WorkerSettings(max_receives=2, visibility_timeout=60))
    await queue.send(str(tx_id))
    told = []
    for delivery in (1, 2):
        # Received again at once (visibility 0), not after the worker's 60 s.
        [message] = await queue.receive(max_messages=1, wait_seconds=0, visibility_timeout=0)
        assert not await worker.handle(message)
        tx, reasons = await _look(units, tx_id)
        told.append(
            f"delivery {delivery} of 2 failed: the node answered: header not found; "
            "it comes back after the visibility timeout"
        )
        assert (tx.status, tx.error_code, tx.error_message) == ("SUBMITTED", "RETRYING", told[-1])
        assert reasons == [f"RETRYING: {cause}" for cause in told]

    [message] = await queue.receive(max_messages=1, wait_seconds=0, visibility_timeout=0)
    assert await worker.handle(message)
    tx, reasons = await _look(units, tx_id)
    dead = f"received 3 times without being processed; last error: {told[-1]}"
    assert (tx.status, tx.error_code, tx.error_message) == ("FAILED", "DEAD_LETTER", dead)
    assert reasons[-1] == f"DEAD_LETTER: {dead}"
    assert [letter["reason"] for letter in await queue.dead_letters()] == [dead]


async def test_a_delivery_after_one_that_did_not_finish_is_told(engine: AsyncEngine) -> None:
    units = UnitsOfWork(engine)
    tx_id = await _store(units, Case(TransactionStatus.QUEUED))
    node = FakeChain(CONFIG, 1.0)
    chains = Chains([CONFIG], 1.0, client=lambda config, timeout: node)
    processor = TransactionProcessor(chains, check_interval=INTERVAL, clock=lambda: NOW)
    queue = PostgresQueue(engine, f"causes-{uuid.uuid4().hex[:8]}")
    worker = Worker(units, queue, processor, WorkerSettings())
    await queue.send(str(tx_id))
    # The first delivery's worker died without a word: the message comes back.
    await queue.receive(max_messages=1, wait_seconds=0, visibility_timeout=0)
    [message] = await queue.receive(max_messages=1, wait_seconds=0, visibility_timeout=0)
    assert await worker.handle(message)
    tx, reasons = await _look(units, tx_id)
    told = (
        "RETRYING: delivery 2 of 5: the one before did not finish "
        "(a worker stopped or ran out of time)"
    )
    assert reasons == [told, None]  # then SUBMITTED
    assert (tx.status, tx.error_code) == ("SUBMITTED", None)


async def test_the_chain_not_answering_is_told_once_and_cleared_when_it_answers(
    engine: AsyncEngine,
) -> None:
    class Down(FakeChain):
        down = True

        async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
            if self.down:
                raise ChainUnavailable("chain 31337 (fake) did not answer in time")
            return None

    units = UnitsOfWork(engine)
    tx_id = await _store(units, Case(TransactionStatus.SUBMITTED, row=PENDING))
    node = Down(CONFIG, 1.0)
    chains = Chains([CONFIG], 1.0, client=lambda config, timeout: node)
    processor = TransactionProcessor(chains, check_interval=INTERVAL, clock=lambda: NOW)
    queue = PostgresQueue(engine, f"causes-{uuid.uuid4().hex[:8]}")
    worker = Worker(units, queue, processor, WorkerSettings())
    cause = "chain 31337 (fake) did not answer in time; looking again in 4 s"
    for _ in range(3):
        await queue.send(str(tx_id))
        [message] = await queue.receive(max_messages=1, wait_seconds=0, visibility_timeout=0)
        assert await worker.handle(message)  # acked: it is looked at again after the delay
        tx, reasons = await _look(units, tx_id)
        assert (tx.error_code, tx.error_message) == ("RETRYING", cause)
        assert reasons == [f"RETRYING: {cause}"]  # told once, not at every look
    node.down = False
    async with units.begin() as uow:
        assert await processor.process(uow, tx_id) == INTERVAL
    tx, _ = await _look(units, tx_id)
    assert (tx.status, tx.error_code, tx.error_message) == ("SUBMITTED", None, None)


async def send_as(w3: AsyncWeb3[Any], address: str, nonce: int, fee: int) -> None:
    """A transaction from ``address`` sent straight to anvil (impersonated: walletql holds
    the key), with the given nonce and fee caps: what another wallet app would do."""
    await w3.provider.make_request("anvil_impersonateAccount", [address])
    tx = {"from": address, "to": address, "value": "0x0", "nonce": hex(nonce), "gas": hex(21_000),
          "maxFeePerGas": hex(fee), "maxPriorityFeePerGas": hex(fee)}  # fmt: skip
    answer = await w3.provider.make_request("eth_sendTransaction", [tx])
    assert "error" not in answer, answer
    await w3.provider.make_request("anvil_stopImpersonatingAccount", [address])


def conflict_of(tx: dict[str, Any]) -> str:
    """What a NONCE_CONFLICT says, up to the node's own words."""
    return (
        f"nonce {tx['nonce']} was used by a transaction walletql did not send "
        "(the node said: nonce too low"
    )


async def test_a_nonce_taken_before_the_broadcast_fails_at_once_in_the_nodes_words(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with pipeline_server(anvil_settings, run_worker=False) as api:
        token, address = await new_wallet(api, signer, "alice", anvil_w3)
        queued = await submit(api, token)
        await send_as(anvil_w3, address, int(queued["nonce"]), 10**10)  # mined at once
        async with pipeline_server(anvil_settings):
            failed = await wait_for(api, token, queued["id"], "FAILED")
    assert failed["error"]["code"] == "NONCE_CONFLICT"
    assert failed["error"]["message"].startswith(conflict_of(queued))
    assert [e["status"] for e in failed["events"]] == ["QUEUED", "SUBMITTED", "FAILED"]
    assert failed["events"][-1]["reason"] == f"NONCE_CONFLICT: {failed['error']['message']}"


async def test_a_pending_transaction_outbid_by_another_with_its_nonce_fails_at_once(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    _, w3 = manual_anvil
    queued = manual_alice.tx
    pending = await manual_alice.wait("SUBMITTED")
    # Another app replaces it in the pool (10x the fees), and that one is mined.
    await send_as(w3, manual_alice.address, int(queued["nonce"]), 10 * int(pending["maxFeePerGas"]))
    await mine(w3)
    failed = await manual_alice.wait("FAILED")
    assert failed["error"]["code"] == "NONCE_CONFLICT"
    assert failed["error"]["message"].startswith(conflict_of(queued))
    assert failed["blockNumber"] is None


async def test_a_refused_resend_is_told_in_the_nodes_words_and_cleared_once_taken(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    _, w3 = manual_anvil
    queued = manual_alice.tx
    await manual_alice.wait("SUBMITTED")
    # The node forgets it, and the wallet can no longer pay: every resend is refused.
    await w3.provider.make_request("anvil_dropTransaction", [queued["hash"]])
    await fund(w3, manual_alice.address, 0)
    refused = await manual_alice.wait("SUBMITTED", reason="REJECTED")
    assert refused["error"]["code"] == "REJECTED"
    assert "insufficient funds" in refused["error"]["message"].lower()
    assert refused["events"][-1]["reason"] == f"REJECTED: {refused['error']['message']}"
    await fund(w3, manual_alice.address, 10**18)
    done = await mine_until(manual_alice.server, manual_alice.token, queued["id"], w3)
    assert done["error"] is None
    assert done["hash"] == queued["hash"]
    reasons = [e["reason"] for e in done["events"]]
    assert reasons.count(f"REJECTED: {refused['error']['message']}") == 1  # told once


async def mine_until(server: Any, token: str, tx_id: str, w3: AsyncWeb3[Any]) -> dict[str, Any]:
    """Mine a block at a time until the transaction is CONFIRMED (the worker resends it)."""
    for _ in range(300):
        await mine(w3)
        tx = await fetch(server, token, tx_id)
        if tx["status"] == "CONFIRMED":
            return tx
        await asyncio.sleep(0.1)
    raise AssertionError(f"never CONFIRMED: {tx}")


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ({"code": -32000, "message": "upstream https://u:s3cret@rpc.example/v3/KEY123 refused\nx"},
         "the node rejected the transaction: upstream https://rpc.example/… refused\\x0ax"),
        ({"code": 3, "message": "execution reverted: see https://rpc.example/v3/KEY123?key=s3cret"},
         "the transaction would revert: execution reverted: see https://rpc.example/…"),
    ],
)  # fmt: skip
async def test_a_gas_estimate_refused_reaches_the_caller_without_the_nodes_credentials(
    error: dict[str, Any], said: str
) -> None:
    async def rpc(request: web.Request) -> web.Response:
        call = await request.json()
        if call["method"] == "eth_chainId":
            return web.json_response({"jsonrpc": "2.0", "id": call["id"], "result": "0x7a69"})
        return web.json_response({"jsonrpc": "2.0", "id": call["id"], "error": error})

    app = web.Application()
    app.router.add_post("/", rpc)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    chain = Chain(replace(CONFIG, rpc_url=f"http://127.0.0.1:{port}/"), 5.0)
    try:
        with pytest.raises(BadUserInput) as refused:
            await chain.estimate_gas({"from": "0x" + "11" * 20, "to": "0x" + "22" * 20})
    finally:
        await chain.close()
        await runner.cleanup()
    assert refused.value.message == said
