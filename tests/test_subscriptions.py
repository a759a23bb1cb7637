"""Live status over graphql-transport-ws: real uvicorn, real websocket clients, a separate
worker process, a second API process, resume, listener reconnect, slow subscribers."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import PipelineSettings, worker_env
from testkit.pipeline import Submitted, mine, new_wallet, one_submitted, pipeline_server, submit
from testkit.postgres import asyncpg_dsn
from testkit.process import ServerProcess
from testkit.server import LiveServer
from testkit.ws import GraphQLWS, StuckClient
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.settings import Settings

STATUS = """subscription($id: ID!, $after: BigInt) {
  transactionStatus(id: $id, afterSeq: $after) { seq userSeq status reason transactionId }
}"""
MINE = """subscription($after: BigInt) {
  myTransactions(afterSeq: $after) { seq userSeq status transactionId }
}"""
STATUSES = ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]


def statuses(payloads: list[dict[str, Any]], field: str = "transactionStatus") -> list[str]:
    return [p["data"][field]["status"] for p in payloads]


async def test_a_separate_worker_process_pushes_every_status_to_the_subscriber(
    database_url: str,
    anvil: Anvil,
    anvil_w3: AsyncWeb3[Any],
    pipeline: PipelineSettings,
    signer: DevSigner,
) -> None:
    settings = pipeline(anvil, chain={"confirmations": 2})
    async with (
        one_submitted(settings, signer, anvil_w3, run_worker=False) as alice,
        GraphQLWS(alice.server.ws_url, alice.token) as ws,
    ):
        await ws.subscribe("s", STATUS, {"id": alice.tx["id"], "after": 0})
        first = await ws.collect("s", count=1)
        assert statuses(first) == ["QUEUED"]
        async with ServerProcess(worker_env(settings, database_url), ("worker",)):
            pushed = await ws.collect("s", count=2)  # SUBMITTED, MINED
            await mine(anvil_w3)
            pushed += await ws.collect("s")  # CONFIRMED, then complete
    assert statuses(first + pushed) == STATUSES
    assert [p["data"]["transactionStatus"]["seq"] for p in first + pushed] == ["1", "2", "3", "4"]


async def test_a_subscriber_on_a_second_api_process_gets_the_workers_events(
    database_url: str, anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    env = worker_env(anvil_settings, database_url)
    async with (
        ServerProcess(env, ("serve", "--no-worker")) as second,
        pipeline_server(anvil_settings, run_worker=False) as first,
    ):
        token, _ = await new_wallet(first, signer, "alice", anvil_w3)
        async with GraphQLWS(second.ws_url, token) as ws:
            await ws.subscribe("mine", MINE, {})
            queued = await submit(first, token)
            async with pipeline_server(anvil_settings):  # the worker, in a third runtime
                pushed = await ws.collect("mine", count=4)
    assert statuses(pushed, "myTransactions") == STATUSES
    assert {p["data"]["myTransactions"]["transactionId"] for p in pushed} == {queued["id"]}


async def test_reconnecting_with_after_seq_misses_nothing_and_repeats_nothing(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    _, w3 = manual_anvil
    async with GraphQLWS(manual_alice.server.ws_url, manual_alice.token) as ws:
        await ws.subscribe("s", STATUS, {"id": manual_alice.tx["id"], "after": 0})
        before = await ws.collect("s", count=2)  # QUEUED, SUBMITTED
    # Disconnected: events happen meanwhile.
    await mine(w3)
    await manual_alice.wait("CONFIRMED")
    last = before[-1]["data"]["transactionStatus"]["seq"]
    async with GraphQLWS(manual_alice.server.ws_url, manual_alice.token) as ws:
        await ws.subscribe("s", STATUS, {"id": manual_alice.tx["id"], "after": last})
        after = await ws.collect("s")
    seqs = [p["data"]["transactionStatus"]["seq"] for p in before + after]
    assert seqs == ["1", "2", "3", "4"]
    assert statuses(before + after) == STATUSES


async def test_without_after_seq_the_current_state_comes_first(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    _, w3 = manual_anvil
    await manual_alice.wait("SUBMITTED")
    async with GraphQLWS(manual_alice.server.ws_url, manual_alice.token) as ws:
        await ws.subscribe("s", STATUS, {"id": manual_alice.tx["id"]})
        current = await ws.collect("s", count=1)
        await mine(w3)
        rest = await ws.collect("s")
    assert statuses(current) == ["SUBMITTED"]
    assert statuses(rest) == ["MINED", "CONFIRMED"]


async def test_a_killed_listener_connection_reconnects_and_nothing_is_missed(
    database_url: str,
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]],
    manual_alice: Submitted,
) -> None:
    _, w3 = manual_anvil
    dsn = asyncpg_dsn(database_url)
    async with GraphQLWS(manual_alice.server.ws_url, manual_alice.token) as ws:
        await ws.subscribe("s", STATUS, {"id": manual_alice.tx["id"], "after": 0})
        got = await ws.collect("s", count=2)
        admin = await asyncpg.connect(dsn)
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            # Its last statement: the LISTEN, or the health check that follows it.
            "WHERE datname = current_database() AND (query LIKE 'LISTEN%' "
            "OR query = 'SELECT 1')"
        )
        await admin.close()
        assert len(killed) == 1  # exactly this process's listening connection
        await mine(w3)  # MINED and CONFIRMED are committed while it reconnects
        got += await ws.collect("s")
    assert statuses(got) == STATUSES


async def test_another_users_transaction_is_not_found(
    anvil_w3: AsyncWeb3[Any], anvil_settings: Settings, signer: DevSigner
) -> None:
    async with one_submitted(anvil_settings, signer, anvil_w3, run_worker=False) as alice:
        mallory, _ = await new_wallet(alice.server, signer, "mallory", None)
        async with GraphQLWS(alice.server.ws_url, mallory) as ws:
            await ws.subscribe("s", STATUS, {"id": alice.tx["id"]})
            message = await ws.receive()
    assert message["type"] in ("next", "error")
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


BIG = """subscription { myTransactions {
  seq userSeq status transactionId
  transaction { id hash hashes data events { seq status at reason } }
} }"""


async def test_a_stuck_subscriber_does_not_delay_the_others_and_is_cut_off(
    pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(None, subscriber_buffer=4)
    async with LiveServer(create_app(settings, run_worker=True), send_buffer=8192) as server:
        token, _ = await new_wallet(server, signer, "alice", None)
        stuck = StuckClient(server.port, token)
        await stuck.open(BIG)
        try:
            async with GraphQLWS(server.ws_url, token) as live:
                await live.subscribe("l", MINE, {})
                await asyncio.sleep(0.2)
                submitted = [
                    await submit(server, token, data="0x" + "ab" * 2000) for _ in range(60)
                ]
                got = await live.collect("l", count=240, timeout=120)
            events = [p["data"]["myTransactions"] for p in got]
            assert len({(e["transactionId"], e["seq"]) for e in events}) == 240
            assert {e["transactionId"] for e in events} == {s["id"] for s in submitted}
            # The stuck one was cut off with a clear reason instead of being buffered for.
            seen = await stuck.read_until(b"SLOW_CONSUMER", timeout=30)
        finally:
            stuck.close()
    assert b'"code": "RATE_LIMITED"' in seen or b'"code":"RATE_LIMITED"' in seen
    assert b"resumeAfterSeq" in seen
    # What reached the client before the cut is far less than the 240 events' worth.
    assert seen.count(b'"myTransactions"') < 240


async def test_each_pushed_item_reads_its_transaction_afresh(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_alice: Submitted
) -> None:
    # One connection's context serves every item: what one item read must not serve the next.
    _, w3 = manual_anvil
    query = """subscription($id: ID!) { transactionStatus(id: $id, afterSeq: 0) {
      seq transaction { events { seq } }
    } }"""
    async with GraphQLWS(manual_alice.server.ws_url, manual_alice.token) as ws:
        await ws.subscribe("s", query, {"id": manual_alice.tx["id"]})
        frames = await ws.collect("s", count=2)  # QUEUED, SUBMITTED
        await mine(w3)
        frames += await ws.collect("s")  # MINED and CONFIRMED, pushed; then complete
    items = [frame["data"]["transactionStatus"] for frame in frames]
    assert [item["seq"] for item in items] == ["1", "2", "3", "4"]
    for item in items:
        assert item["seq"] in [e["seq"] for e in item["transaction"]["events"]], items
