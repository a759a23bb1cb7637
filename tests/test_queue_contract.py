"""One contract for every queue adapter: PostgreSQL, SQS standard and SQS FIFO (on moto),
and SQS standard through botocore in a thread (the Lambda package's client).

Each test runs against each adapter; visibility timeouts and delays are whole seconds, so
the waits here are 1-2 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from db.engine import create_engine
from services.queues import Message, Queue
from services.queues.postgres import PostgresQueue
from services.queues.sqs import QueueError, SqsQueue
from testkit.sqs import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoSqsServer,
    create_queues,
    receive_all,
)

ADAPTERS = ["postgres", "sqs", "sqs-fifo", "sqs-botocore"]


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    reason: str


@dataclass
class Adapter:
    kind: str
    queue: Queue
    dead_letters: Callable[[], Awaitable[list[DeadLetter]]]


@dataclass(frozen=True)
class Backing:
    """What an adapter runs on: a fresh database, or the moto server."""

    kind: str
    database_url: str = ""
    moto: MotoSqsServer | None = None


@pytest.fixture(params=ADAPTERS)
def backing(request: pytest.FixtureRequest) -> Backing:
    # Sync on purpose: only a sync fixture may request (async) fixtures by name, and the
    # SQS tests then create no database and the PostgreSQL ones start no moto server.
    if request.param == "postgres":
        return Backing("postgres", database_url=request.getfixturevalue("database_url"))
    return Backing(request.param, moto=request.getfixturevalue("moto_sqs"))


@asynccontextmanager
async def _postgres_adapter(database_url: str) -> AsyncIterator[Adapter]:
    engine = create_engine(database_url)
    queue = PostgresQueue(engine, "contract", poll_interval=0.05)

    async def dead_letters() -> list[DeadLetter]:
        return [
            DeadLetter(str(row["message_id"]), str(row["body"]), str(row["reason"]))
            for row in await queue.dead_letters()
        ]

    try:
        yield Adapter("postgres", queue, dead_letters)
    finally:
        await queue.close()
        await engine.dispose()


@asynccontextmanager
async def _sqs_adapter(moto: MotoSqsServer, kind: str) -> AsyncIterator[Adapter]:
    fifo = kind == "sqs-fifo"
    urls = await create_queues(moto.endpoint_url)
    queue_url, dlq_url = (
        (urls.fifo_url, urls.fifo_dlq_url) if fifo else (urls.standard_url, urls.standard_dlq_url)
    )
    queue = SqsQueue(
        queue_url,
        region=REGION,
        endpoint_url=moto.endpoint_url,
        dead_letter_url=dlq_url,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        transport="botocore" if kind == "sqs-botocore" else "aioboto3",
    )

    async def dead_letters() -> list[DeadLetter]:
        return [
            DeadLetter(
                raw["MessageAttributes"]["message_id"]["StringValue"],
                raw["Body"],
                raw["MessageAttributes"]["reason"]["StringValue"],
            )
            for raw in await receive_all(moto.endpoint_url, dlq_url)
        ]

    try:
        yield Adapter(kind, queue, dead_letters)
    finally:
        await queue.close()


@pytest.fixture
async def adapter(backing: Backing) -> AsyncIterator[Adapter]:
    if backing.moto is None:
        made = _postgres_adapter(backing.database_url)
    else:
        made = _sqs_adapter(backing.moto, backing.kind)
    async with made as value:
        yield value


async def _receive(
    queue: Queue, *, max_messages: int = 10, wait: float = 0, visibility: int = 30
) -> list[Message]:
    return await queue.receive(
        max_messages=max_messages, wait_seconds=wait, visibility_timeout=visibility
    )


async def test_a_sent_message_is_received_once_and_hidden_while_in_flight(
    adapter: Adapter,
) -> None:
    await adapter.queue.send("tx-1")

    [message] = await _receive(adapter.queue, wait=2)
    assert (message.body, message.receive_count) == ("tx-1", 1)
    assert message.id
    assert message.receipt

    assert await _receive(adapter.queue, wait=0.5) == []


async def test_ack_deletes_the_message_so_it_is_never_received_again(adapter: Adapter) -> None:
    await adapter.queue.send("acked")
    await adapter.queue.send("kept")
    # Visibility 0: both are visible again at once unless deleted.
    first = await _receive(adapter.queue, wait=2, visibility=0)
    assert sorted(m.body for m in first) == ["acked", "kept"]

    await adapter.queue.ack(next(m for m in first if m.body == "acked"))

    again = await _receive(adapter.queue, wait=1)
    assert [(m.body, m.receive_count) for m in again] == [("kept", 2)]
    await adapter.queue.ack(again[0])
    assert await _receive(adapter.queue) == []


async def test_an_unacked_message_is_visible_again_after_its_visibility_timeout(
    adapter: Adapter,
) -> None:
    await adapter.queue.send("retry me")
    [first] = await _receive(adapter.queue, wait=2, visibility=1)
    received_at = time.monotonic()
    assert await _receive(adapter.queue) == []

    [second] = await _receive(adapter.queue, wait=4)

    assert time.monotonic() - received_at >= 0.9
    assert (second.id, second.body, second.receive_count) == (first.id, "retry me", 2)
    assert second.receipt != first.receipt


async def test_extend_keeps_a_message_hidden_and_extend_zero_makes_it_visible_at_once(
    adapter: Adapter,
) -> None:
    await adapter.queue.send("slow job")
    [message] = await _receive(adapter.queue, wait=2, visibility=1)

    await adapter.queue.extend(message, 30)
    await asyncio.sleep(1.5)  # past the original one-second timeout
    assert await _receive(adapter.queue) == []

    await adapter.queue.extend(message, 0)
    [again] = await _receive(adapter.queue, wait=1)
    assert (again.id, again.body, again.receive_count) == (message.id, "slow job", 2)


async def test_delay_seconds_hides_a_new_message_until_it_is_due(adapter: Adapter) -> None:
    sent_at = time.monotonic()
    await adapter.queue.send("later", delay_seconds=1.5)  # SQS rounds up to 2 s

    assert await _receive(adapter.queue) == []
    [message] = await _receive(adapter.queue, wait=5)

    assert time.monotonic() - sent_at >= 1.45
    # Not-yet-due receives (FIFO hides the message again) are no delivery.
    assert (message.body, message.receive_count) == ("later", 1)


async def test_a_delay_over_900_seconds_is_refused(adapter: Adapter) -> None:
    with pytest.raises(ValueError, match="delay_seconds"):
        await adapter.queue.send("too late", delay_seconds=901)
    assert await _receive(adapter.queue) == []


async def test_receive_long_polls_until_a_message_arrives(adapter: Adapter) -> None:
    async def send_later() -> None:
        await asyncio.sleep(0.5)
        await adapter.queue.send("arrived")

    started = time.monotonic()
    sender = asyncio.create_task(send_later())
    messages = await _receive(adapter.queue, wait=5)
    elapsed = time.monotonic() - started
    await sender

    assert [m.body for m in messages] == ["arrived"]
    assert 0.45 <= elapsed < 3


async def test_batch_receive_returns_up_to_max_messages(adapter: Adapter) -> None:
    sent = [f"batch-{i}" for i in range(5)]
    for body in sent:
        await adapter.queue.send(body)

    first = await _receive(adapter.queue, max_messages=3, wait=2)
    assert len(first) == 3
    for message in first:
        await adapter.queue.ack(message)
    rest = await _receive(adapter.queue, max_messages=10, wait=2)

    assert len(rest) == 2
    assert sorted(m.body for m in first + rest) == sent


async def test_concurrent_receivers_never_get_the_same_message(adapter: Adapter) -> None:
    sent = {f"job-{i:02d}" for i in range(20)}
    for i, body in enumerate(sorted(sent)):
        await adapter.queue.send(body, group_id=f"group-{i % 4}")
    start = asyncio.Event()

    async def receiver() -> list[Message]:
        got: list[Message] = []
        await start.wait()
        while batch := await _receive(adapter.queue, max_messages=3, wait=1):
            got.extend(batch)
            for message in batch:
                await adapter.queue.ack(message)
        return got

    receivers = [asyncio.create_task(receiver()) for _ in range(5)]
    start.set()
    deliveries = [m for got in await asyncio.gather(*receivers) for m in got]

    assert len(deliveries) == 20
    assert len({m.id for m in deliveries}) == 20
    assert {m.body for m in deliveries} == sent


async def test_dead_letter_moves_the_message_to_the_dead_letter_queue(adapter: Adapter) -> None:
    await adapter.queue.send("poison")
    # Visibility 0: the message would be visible again at once if it were still there.
    [message] = await _receive(adapter.queue, wait=2, visibility=0)

    await adapter.queue.dead_letter(message, "malformed transaction")

    assert await adapter.dead_letters() == [
        DeadLetter(message.id, "poison", "malformed transaction")
    ]
    assert await _receive(adapter.queue, wait=0.5) == []


@pytest.mark.parametrize("backing", ["postgres"], indirect=True)
async def test_a_stale_receipt_does_not_ack_or_extend_a_redelivered_message(
    adapter: Adapter,
) -> None:
    # Postgres only: moto applies DeleteMessage/ChangeMessageVisibility with any receipt
    # the message ever had, while SQS only guarantees it for the latest receipt.
    await adapter.queue.send("redelivered")
    [stale] = await _receive(adapter.queue, wait=2, visibility=0)
    [current] = await _receive(adapter.queue, visibility=0)
    assert (current.id, current.receive_count) == (stale.id, 2)

    await adapter.queue.ack(stale)
    await adapter.queue.extend(stale, 60)
    await adapter.queue.dead_letter(stale, "stale")

    [again] = await _receive(adapter.queue)
    assert (again.id, again.body, again.receive_count) == (stale.id, "redelivered", 3)
    assert await adapter.dead_letters() == []


async def test_sqs_dead_letter_without_a_dead_letter_queue_is_an_error(
    moto_sqs: MotoSqsServer,
) -> None:
    urls = await create_queues(moto_sqs.endpoint_url)
    queue = SqsQueue(
        urls.standard_url,
        region=REGION,
        endpoint_url=moto_sqs.endpoint_url,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    try:
        await queue.send("stuck")
        [message] = await _receive(queue, wait=2, visibility=0)
        with pytest.raises(QueueError, match="no dead-letter queue"):
            await queue.dead_letter(message, "poison")
        [still_there] = await _receive(queue)
        assert (still_there.id, still_there.receive_count) == (message.id, 2)
    finally:
        await queue.close()
