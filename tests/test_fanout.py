"""Execute once, write many (walletql/fanout.py): live events reach every subscription of the
same selection as one execution and the same payload, with each subscriber's guarantees
kept: its own shape, its cut-off when it stops reading, afterSeq resume, and 4403 when its
token expires."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from inspect import isawaitable
from typing import Any

import pytest
from graphql.execution import execute_subscription_event
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from web3 import AsyncWeb3
from websockets.exceptions import ConnectionClosed

import walletql.fanout
from services.hub import EventHub, EventView
from services.live import LiveService
from testkit.anvil import Anvil
from testkit.env import PipelineSettings
from testkit.pipeline import mine, new_wallet, submit, wait_for
from testkit.server import LiveServer
from testkit.ws import GraphQLWS, StuckClient
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.fanout import FanOut
from walletql.push_slot import PushSlot
from walletql.settings import Settings

SMALL = """subscription($id: ID!, $after: BigInt) {
  transactionStatus(id: $id, afterSeq: $after) { seq status }
}"""
LARGE = """subscription($id: ID!, $after: BigInt) {
  transactionStatus(id: $id, afterSeq: $after) {
    seq userSeq status reason at transaction { id status hash nonce }
  }
}"""
MINE = "subscription($after: BigInt) { myTransactions(afterSeq: $after) { seq userSeq status } }"
# From the start of the log: a subscription set up after the first event still gets it.
SMALL_MINE = """subscription { myTransactions(afterSeq: 0) {
  seq userSeq status transactionId
} }"""
BIG = """subscription { myTransactions(afterSeq: 0) {
  seq userSeq status transactionId
  transaction { id hash hashes data events { seq status at reason } }
} }"""


def fanout_of(app: Starlette) -> FanOut:
    route = next(r for r in app.routes if isinstance(r, WebSocketRoute))
    fanout: FanOut = route.endpoint.fanout  # type: ignore[attr-defined]
    return fanout


async def subscribers(
    server: LiveServer, token: str, query: str, variables: dict[str, Any], count: int
) -> list[GraphQLWS]:
    sockets = [GraphQLWS(server.ws_url, token) for _ in range(count)]
    await asyncio.gather(*(ws.__aenter__() for ws in sockets))
    for i, ws in enumerate(sockets):
        await ws.subscribe(f"op-{i}", query, variables)
    return sockets


async def frames_until_complete(ws: GraphQLWS) -> list[dict[str, Any]]:
    """Every message of the socket's one operation, up to and including ``complete``."""
    found = []
    while True:
        message = await ws.receive(timeout=60)
        found.append(message)
        if message["type"] in ("complete", "error"):
            return found


async def two_selections(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], settings: Settings, signer: DevSigner
) -> tuple[dict[str, list[list[dict[str, Any]]]], list[dict[str, Any]], Counter[tuple[int, int]]]:
    """Three sockets on SMALL and three on LARGE, all on one transaction, from its first
    event to CONFIRMED: (frames by query, SMALL replayed afterwards, executions)."""
    _, w3 = manual_anvil
    executions: Counter[tuple[int, int]] = Counter()

    def counting(executor: Any) -> Any:
        executions[(id(executor.operation), int(executor.root_value.seq))] += 1
        return execute_subscription_event(executor)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(walletql.fanout, "execute_subscription_event", counting)
        app = create_app(settings, run_worker=True)
        async with LiveServer(app) as server:
            token, _ = await new_wallet(server, signer, "alice", w3)
            queued = await submit(server, token)
            variables = {"id": queued["id"], "after": 0}
            small = await subscribers(server, token, SMALL, variables, 3)
            large = await subscribers(server, token, LARGE, variables, 3)
            await wait_for(server, token, queued["id"], "SUBMITTED")
            # Every socket has QUEUED and SUBMITTED (replayed or pushed): all are live now.
            early = [[await ws.receive(timeout=60) for _ in range(2)] for ws in small + large]
            await mine(w3)  # MINED and CONFIRMED: pushed to all six
            rest = [await frames_until_complete(ws) for ws in small + large]
            frames = {
                "small": [a + b for a, b in zip(early[:3], rest[:3], strict=True)],
                "large": [a + b for a, b in zip(early[3:], rest[3:], strict=True)],
            }
            assert len(fanout_of(app)) == 0  # completed: nothing is left behind
            async with GraphQLWS(server.ws_url, token) as replay:
                await replay.subscribe("r", SMALL, variables)
                replayed = await replay.collect("r")
            for ws in small + large:
                await ws.close()
    return frames, replayed, executions


async def drain(ws: GraphQLWS) -> None:
    while True:
        await ws.receive(timeout=60)


def payloads(frames: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["payload"] for f in frames if f["type"] == "next"]


async def test_identical_selections_get_identical_payloads_from_one_execution(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> None:
    frames, replayed, executions = await two_selections(manual_anvil, manual_settings, signer)
    for query in ("small", "large"):
        sockets = frames[query]
        # Pushed (MINED, CONFIRMED): the same payload for all. The first two may have been
        # replayed at different moments, and `transaction` is the transaction as it is then.
        assert all(payloads(s)[2:] == payloads(sockets[0])[2:] for s in sockets)
        events = [[(e["seq"], e["status"]) for e in (p["data"]["transactionStatus"]
                   for p in payloads(s))] for s in sockets]  # fmt: skip
        assert all(e == events[0] for e in events)
        # Each socket's frames carry its own operation id, and end with complete.
        for i, socket in enumerate(sockets):
            assert {f["id"] for f in socket} == {f"op-{i}"}
            assert socket[-1]["type"] == "complete"
    statuses = [p["data"]["transactionStatus"]["status"] for p in payloads(frames["small"][0])]
    assert statuses == ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]
    # The same payloads as strawberry gives when it replays the log for a new subscriber.
    assert payloads(frames["small"][0]) == replayed
    # Live events went out as one execution per selection, whatever the subscriber count.
    assert executions
    assert set(executions.values()) == {1}


async def test_distinct_selections_on_one_transaction_get_their_own_shapes(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> None:
    frames, _, executions = await two_selections(manual_anvil, manual_settings, signer)
    small = [p["data"]["transactionStatus"] for p in payloads(frames["small"][0])]
    large = [p["data"]["transactionStatus"] for p in payloads(frames["large"][0])]
    assert {tuple(sorted(e)) for e in small} == {("seq", "status")}
    assert {tuple(sorted(e)) for e in large} == {
        ("at", "reason", "seq", "status", "transaction", "userSeq")
    }
    assert [e["seq"] for e in small] == [e["seq"] for e in large] == ["1", "2", "3", "4"]
    assert large[-1]["transaction"]["status"] == "CONFIRMED"
    assert large[-1]["transaction"]["hash"].startswith("0x")
    # Two selections: MINED and CONFIRMED (pushed to all) executed twice in all, once for each.
    per_event = Counter(seq for _, seq in executions)
    assert (per_event[3], per_event[4]) == (2, 2)


async def test_a_slow_consumer_is_cut_off_while_the_other_999_keep_receiving(
    pipeline: PipelineSettings, signer: DevSigner
) -> None:
    # One client that stops reading, on the large selection with one healthy client, and 998
    # more healthy ones on a small selection: all subscribed to the same user's events. The
    # stuck one fills its socket (~90 KiB: ~22 events) and then its buffer of 8.
    settings = pipeline(None, subscriber_buffer=8)
    app = create_app(settings, run_worker=True)
    async with LiveServer(app, send_buffer=8192, ws_ping_interval=None) as server:
        token, _ = await new_wallet(server, signer, "alice", None)
        stuck = StuckClient(server.port, token)
        await stuck.open(BIG)
        sockets = await subscribers(server, token, BIG, {}, 1)
        try:
            for _ in range(9):  # a few at a time: the server is in this process
                sockets += await subscribers(server, token, SMALL_MINE, {}, 111)
            await sockets.pop().close()  # 999
            # The first transaction's four events bring every subscription up to date.
            submitted = [await submit(server, token, data="0x" + "ab" * 2000)]
            ops = ["op-0"] + [f"op-{i % 111}" for i in range(998)]
            got = await asyncio.gather(*(ws.collect(op, count=4, timeout=120)
                                         for ws, op in zip(sockets, ops, strict=True)))  # fmt: skip
            receiving = asyncio.gather(*(ws.collect(op, count=36, timeout=120)
                                         for ws, op in zip(sockets, ops, strict=True)))  # fmt: skip
            submitted += [await submit(server, token, data="0x" + "ab" * 2000) for _ in range(9)]
            got = [a + b for a, b in zip(got, await receiving, strict=True)]
            # Every event went out; now it reads what reached it before the cut.
            seen = await stuck.read_until(b"SLOW_CONSUMER", timeout=60)
        finally:
            stuck.close()
            await asyncio.gather(*(ws.close() for ws in sockets))
    ids = {s["id"] for s in submitted}
    order = []
    for events in got:
        pushed = [p["data"]["myTransactions"] for p in events]
        assert len({(e["transactionId"], e["seq"]) for e in pushed}) == 40
        assert {e["transactionId"] for e in pushed} == ids
        order.append([(e["userSeq"], e["status"]) for e in pushed])
    assert all(o == order[0] for o in order)  # the same events in the same order for all
    assert b'"code":"RATE_LIMITED"' in seen
    assert b"resumeAfterSeq" in seen
    assert seen.count(b'"myTransactions"') < 40  # cut off, not buffered for


async def test_after_seq_resumes_where_the_fan_out_left_off(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> None:
    _, w3 = manual_anvil
    app = create_app(manual_settings, run_worker=True)
    async with LiveServer(app) as server:
        token, _ = await new_wallet(server, signer, "alice", w3)
        async with GraphQLWS(server.ws_url, token) as ws, GraphQLWS(server.ws_url, token) as other:
            await ws.subscribe("m", MINE, {})
            await other.subscribe("m", MINE, {})
            first = await submit(server, token)
            before = await ws.collect("m", count=2)  # QUEUED, SUBMITTED: from the fan-out
            assert len(fanout_of(app)) == 1
        # Gone: more events meanwhile.
        second = await submit(server, token)
        await wait_for(server, token, second["id"], "SUBMITTED")
        await mine(w3)
        await wait_for(server, token, first["id"], "CONFIRMED")
        await wait_for(server, token, second["id"], "CONFIRMED")
        last = before[-1]["data"]["myTransactions"]["userSeq"]
        async with GraphQLWS(server.ws_url, token) as ws:
            await ws.subscribe("m", MINE, {"after": last})
            after = await ws.collect("m", count=6)
            third = await submit(server, token)  # and live again, through the fan-out
            after += await ws.collect("m", count=1)
    seqs = [int(p["data"]["myTransactions"]["userSeq"]) for p in before + after]
    assert seqs == list(range(seqs[0], seqs[0] + 9))
    assert after[-1]["data"]["myTransactions"]["status"] == "QUEUED"
    assert third["status"] == "QUEUED"


async def test_a_token_expiring_mid_stream_still_closes_with_4403(
    pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(None, jwt_leeway_seconds=0)
    app = create_app(settings, run_worker=True)
    async with LiveServer(app) as server:
        token, _ = await new_wallet(server, signer, "alice", None)
        async with GraphQLWS(server.ws_url, signer.mint("alice", ttl=8)) as ws:
            await ws.subscribe("m", MINE, {})
            await submit(server, token)
            pushed = await ws.collect("m", count=2)  # from the fan-out
            assert len(fanout_of(app)) == 1
            with pytest.raises(ConnectionClosed) as closed:
                await drain(ws)
        await asyncio.sleep(0.2)
        assert len(fanout_of(app)) == 0
    assert [p["data"]["myTransactions"]["status"] for p in pushed] == ["QUEUED", "SUBMITTED"]
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Token expired")


class Gate:
    """Holds the fan-out's first execution until released: an execution that awaits (here
    the ``transaction`` field's read) lets anything else run before its frames are written."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True
        self.held: asyncio.Task[Any] | None = None  # the fan-out's task that waits

    async def __call__(self, executor: Any) -> Any:
        if self.armed:
            self.armed = False
            self.held = asyncio.current_task()
            self.entered.set()
            await self.release.wait()
        outcome = execute_subscription_event(executor)
        return await outcome if isawaitable(outcome) else outcome


def hubs_made(patch: pytest.MonkeyPatch) -> list[EventHub]:
    made: list[EventHub] = []
    original = EventHub.__init__

    def recording(self: EventHub, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    patch.setattr(EventHub, "__init__", recording)
    return made


async def test_an_event_a_woken_subscriber_sent_itself_is_not_written_again(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> None:
    _, w3 = manual_anvil
    gate = Gate()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(walletql.fanout, "execute_subscription_event", gate)
        hubs = hubs_made(patch)
        app = create_app(manual_settings, run_worker=True)
        async with LiveServer(app) as server:
            token, _ = await new_wallet(server, signer, "alice", w3)
            queued = await submit(server, token)
            async with GraphQLWS(server.ws_url, token) as ws:
                await ws.subscribe("t", LARGE, {"id": queued["id"], "after": 0})
                await wait_for(server, token, queued["id"], "SUBMITTED")
                await mine(w3)
                await gate.entered.wait()  # the fan-out executes the next event, and waits
                await wait_for(server, token, queued["id"], "CONFIRMED")
                hubs[0].catch_up_all()  # the subscriber wakes and sends the rest on its own
                frames = await frames_until_complete(ws)
                gate.release.set()
                assert gate.held is not None
                await gate.held  # the held execution's writes are done
                await ws.send({"type": "ping"})
                while (message := await ws.receive())["type"] != "pong":
                    frames.append(message)
    seqs = [p["data"]["transactionStatus"]["seq"] for p in payloads(frames)]
    assert seqs == ["1", "2", "3", "4"]
    assert [f["type"] for f in frames][-1] == "complete"


async def test_a_woken_subscriber_whose_catch_up_fails_gets_an_internal_error_and_complete(
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]], manual_settings: Settings, signer: DevSigner
) -> None:
    _, w3 = manual_anvil
    failing = False
    original = LiveService._events_after

    async def events_after(self: LiveService, *args: Any) -> list[EventView]:
        if failing:
            raise RuntimeError("the database went away")
        return await original(self, *args)

    parked = asyncio.Event()
    park = PushSlot.park

    def parking(self: PushSlot, *args: Any) -> bool:
        taken = park(self, *args)
        parked.set()
        return taken

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LiveService, "_events_after", events_after)
        patch.setattr(PushSlot, "park", parking)
        hubs = hubs_made(patch)
        app = create_app(manual_settings, run_worker=True)
        async with LiveServer(app) as server:
            token, _ = await new_wallet(server, signer, "alice", w3)
            queued = await submit(server, token)
            await wait_for(server, token, queued["id"], "SUBMITTED")
            async with GraphQLWS(server.ws_url, token) as ws:
                await ws.subscribe("t", SMALL, {"id": queued["id"], "after": 0})
                assert len(await ws.collect("t", count=2)) == 2  # QUEUED, SUBMITTED
                await parked.wait()  # in the fan-out
                failing = True
                hubs[0].catch_up_all()
                frames = await frames_until_complete(ws)
    errors = [e for p in payloads(frames) for e in p.get("errors", [])]
    assert [e["extensions"]["code"] for e in errors] == ["INTERNAL"]
    assert "database" not in errors[0]["message"]
    assert frames[-1] == {"id": "t", "type": "complete"}
