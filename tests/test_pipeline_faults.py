"""Faults: nothing is lost, and nothing is broadcast twice with different bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from web3 import AsyncHTTPProvider, AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import PipelineSettings, worker_env
from testkit.pipeline import (
    Submitted,
    mine,
    new_wallet,
    one_submitted,
    pipeline_server,
    submit,
    wait_for,
)
from testkit.postgres import asyncpg_dsn
from tests.support import run_crashing_worker
from walletql.devauth import DevSigner
from walletql.settings import Settings

STATUSES = ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]


async def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def pool_hashes(w3: AsyncWeb3[Any]) -> set[str]:
    content = await w3.provider.make_request("txpool_content", [])
    found = set()
    for section in content["result"].values():
        for by_nonce in section.values():
            for tx in by_nonce.values():
                found.add(tx["hash"])
    return found


async def test_a_message_delivered_twice_changes_nothing_twice(
    database_url: str, anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.queues.postgres import PostgresQueue

    async with one_submitted(anvil_settings, signer, anvil_w3, run_worker=False) as alice:
        engine = create_async_engine(database_url)
        await PostgresQueue(engine, anvil_settings.queue_name).send(alice.tx["id"])  # the duplicate
        await engine.dispose()
        async with (
            pipeline_server(anvil_settings) as _worker_a,
            pipeline_server(anvil_settings) as _worker_b,
        ):
            done = await alice.wait("CONFIRMED")
    assert [e["status"] for e in done["events"]] == STATUSES
    assert done["hashes"] == [alice.tx["hash"]]


async def test_worker_killed_after_broadcast_before_commit_loses_nothing(
    database_url: str, pipeline: PipelineSettings, signer: DevSigner
) -> None:
    async with Anvil(chain_id=31337, no_mining=True) as node:
        w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
        settings = pipeline(node, queue_visibility_timeout_seconds=2)
        env = worker_env(settings, database_url, WALLETQL_QUEUE_VISIBILITY_TIMEOUT_SECONDS="2")
        async with one_submitted(settings, signer, w3, run_worker=False) as alice:
            await run_crashing_worker(env)
            # The node has the bytes; the database never heard of it.
            assert await pool_hashes(w3) == {alice.tx["hash"]}
            assert (await alice.fetch())["status"] == "QUEUED"
            async with pipeline_server(settings):
                await alice.wait("SUBMITTED")
                await mine(w3)
                done = await alice.wait("CONFIRMED")
        await w3.provider.disconnect()
    assert done["hashes"] == [alice.tx["hash"]]
    assert [e["status"] for e in done["events"] if e["reason"] is None] == STATUSES
    assert all_told_as_redelivered(done)


def all_told_as_redelivered(tx: dict[str, Any]) -> bool:
    """Every note on ``tx`` says a delivery came after one that did not finish."""
    notes = [e["reason"] for e in tx["events"] if e["reason"] is not None]
    return all(n.startswith("RETRYING: delivery ") and "did not finish" in n for n in notes)


async def test_node_down_for_a_while_then_back_loses_nothing(
    tmp_path: Path, pipeline: PipelineSettings, signer: DevSigner
) -> None:
    async with Anvil(chain_id=31337, no_mining=True, state_path=tmp_path / "anvil.json") as node:
        w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
        settings = pipeline(node, chain_timeout_seconds=1)
        async with one_submitted(settings, signer, w3) as alice:
            await alice.wait("SUBMITTED")
            node.stop()
            # The worker keeps trying, gets CHAIN_UNAVAILABLE, and tells the owner.
            for _ in range(300):
                down = await alice.fetch()
                if down["error"] is not None:
                    break
                await asyncio.sleep(0.1)
            assert down["status"] == "SUBMITTED"
            assert down["error"] == {
                "code": "RETRYING",
                "message": "chain 31337 (anvil) did not answer in time; looking again in 0.4 s",
            }
            node.start()
            await asyncio.sleep(1)  # the worker re-broadcasts the stored bytes
            await mine(w3)
            done = await alice.wait("CONFIRMED")
        await w3.provider.disconnect()
    assert done["hashes"] == [alice.tx["hash"]]
    assert done["error"] is None
    told = [e["reason"] for e in done["events"] if (e["reason"] or "").startswith("RETRYING")]
    # Told while the cause stayed the same once (again only if a look went through between).
    assert set(told) == {f"RETRYING: {down['error']['message']}"}
    assert [e["status"] for e in done["events"] if e["reason"] is None] == STATUSES


Tampered = Callable[..., Awaitable[tuple[Submitted, dict[str, Any]]]]


@pytest.fixture
def queue_tampered(
    database_url: str,
    anvil: Anvil,
    anvil_w3: AsyncWeb3[Any],
    pipeline: PipelineSettings,
    signer: DevSigner,
) -> Tampered:
    """alice submits while no worker runs, a statement tampers with the queue, then a worker
    starts: (alice, her transaction once it has ``status``)."""

    async def run(statement: str, status: str, **settings: Any) -> tuple[Submitted, dict[str, Any]]:
        with_worker = pipeline(anvil, **settings)
        async with one_submitted(with_worker, signer, anvil_w3, run_worker=False) as alice:
            await sql(database_url, statement)
            async with pipeline_server(with_worker):
                return alice, await alice.wait(status)

    return run


async def test_api_dying_between_commit_and_enqueue_is_swept_up(
    queue_tampered: Tampered,
) -> None:
    # The process died before its after-commit enqueue: no message exists.
    _, done = await queue_tampered(
        "DELETE FROM queue_messages", "CONFIRMED", sweeper_grace_seconds=1
    )
    assert [e["status"] for e in done["events"]] == STATUSES


async def test_poison_message_goes_to_the_dead_letter_table_and_fails_the_transaction(
    database_url: str, queue_tampered: Tampered
) -> None:
    # As if three workers had died on it in turn.
    alice, failed = await queue_tampered(
        "UPDATE queue_messages SET receive_count = 3", "FAILED", queue_max_receives=3
    )
    assert failed["error"]["code"] == "DEAD_LETTER"
    assert failed["events"][-1]["reason"].startswith("DEAD_LETTER")
    dead = await sql(database_url, "SELECT body, receive_count FROM queue_dead_letters")
    assert [(r["body"], r["receive_count"]) for r in dead] == [(alice.tx["id"], 4)]


async def test_hundred_concurrent_submits_from_one_wallet_get_gapless_nonces(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(anvil, worker_concurrency=8)
    async with pipeline_server(settings) as server:
        token, address = await new_wallet(server, signer, "alice", anvil_w3)
        start = await anvil_w3.eth.get_transaction_count(address)
        results = await asyncio.gather(*(submit(server, token) for _ in range(100)))
        assert sorted(int(r["nonce"]) for r in results) == list(range(start, start + 100))
        for r in results:
            await wait_for(server, token, r["id"], "CONFIRMED", timeout=120)
    assert await anvil_w3.eth.get_transaction_count(address) == start + 100


async def test_two_hundred_submits_over_twenty_wallets_all_confirm(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(anvil, worker_concurrency=8)
    async with pipeline_server(settings) as server:
        wallets = [await new_wallet(server, signer, f"user{i}", anvil_w3) for i in range(20)]
        jobs = [(token, address) for token, address in wallets for _ in range(10)]
        results = await asyncio.gather(*(submit(server, token) for token, _ in jobs))
        by_wallet: dict[str, list[int]] = {}
        for (_, address), r in zip(jobs, results, strict=True):
            by_wallet.setdefault(address, []).append(int(r["nonce"]))
        assert all(sorted(n) == list(range(10)) for n in by_wallet.values())
        for (token, _), r in zip(jobs, results, strict=True):
            await wait_for(server, token, r["id"], "CONFIRMED", timeout=180)


async def test_embedded_default_happy_path(pipeline: PipelineSettings, signer: DevSigner) -> None:
    settings = pipeline(None)
    async with one_submitted(settings, signer, None) as alice:
        done = await alice.wait("CONFIRMED")
        balance = await alice.server.graphql("{ balance { wei } }", token=alice.token)
    assert [e["status"] for e in done["events"]] == STATUSES
    assert int(balance["data"]["balance"]["wei"]) < 10 * 10**18 - 1000


async def test_worker_killed_after_a_broadcast_that_was_mined_at_once_still_confirms(
    database_url: str,
    anvil: Anvil,
    anvil_w3: AsyncWeb3[Any],
    pipeline: PipelineSettings,
    signer: DevSigner,
) -> None:
    # With automine the broadcast is mined before the crash: the next delivery hears
    # "nonce too low" and must find its own receipt, not call it a nonce conflict.
    settings = pipeline(anvil, queue_visibility_timeout_seconds=2)
    env = worker_env(settings, database_url, WALLETQL_QUEUE_VISIBILITY_TIMEOUT_SECONDS="2")
    async with one_submitted(settings, signer, anvil_w3, run_worker=False) as alice:
        await run_crashing_worker(env)
        assert (await anvil_w3.eth.get_transaction_receipt(alice.tx["hash"]))["status"] == 1
        async with pipeline_server(settings):
            done = await alice.wait({"CONFIRMED", "FAILED"})
    assert done["status"] == "CONFIRMED"
    assert done["hash"] == alice.tx["hash"]
    assert all_told_as_redelivered(done)
