"""A page of transactions with every field costs the same number of SQL statements whatever
its size: the per-row fields (hashes, events, confirmations) are loaded in batches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Transaction, TransactionAttempt, TransactionEvent, User, Wallet
from db.unit_of_work import UnitsOfWork
from services.domain import AttemptKind, TransactionStatus
from testkit.env import make_settings
from testkit.server import LiveServer
from testkit.ws import GraphQLWS
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.settings import EMBEDDED_CHAIN_ID

PAGE = """{ transactions(first: 100) {
  edges { cursor node {
    id status chainId from to value data nonce hash gasLimit maxFeePerGas
    maxPriorityFeePerGas gasPrice blockNumber gasUsed effectiveGasPrice
    error { code message } createdAt updatedAt hashes confirmations
    events { seq userSeq transactionId status at reason }
  } }
  pageInfo { hasNextPage endCursor }
} }"""


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends, in order."""
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    yield sent
    event.remove(Engine, "before_cursor_execute", count)


async def _add_transactions(database_url: str, sub: str, count: int) -> None:
    """``count`` mined transactions of ``sub``'s wallet, each with two sent hashes and three
    events (stored directly: the page's cost does not depend on how they got there)."""
    engine = create_async_engine(database_url)
    now = datetime.now(UTC)
    async with UnitsOfWork(engine).begin() as uow:
        user = (await uow.session.scalars(select(User).where(User.sub == sub))).one()
        wallet = (await uow.session.scalars(select(Wallet).where(Wallet.user_id == user.id))).one()
        for n in range(count):
            tx_id = uuid.uuid4()
            uow.session.add(
                Transaction(
                    id=tx_id, user_id=user.id, wallet_id=wallet.id, chain_id=EMBEDDED_CHAIN_ID,
                    status=TransactionStatus.MINED, from_address=wallet.address,
                    to_address=wallet.address, value=n, data=b"", nonce=n, tx_type=2,
                    gas_limit=21_000, max_fee_per_gas=10, max_priority_fee_per_gas=1,
                    hash="0x" + f"{n:064x}", block_number=0, gas_used=21_000,
                    deadline_at=now + timedelta(minutes=5), last_seq=3,
                )
            )  # fmt: skip
            await uow.session.flush()
            for rung in (0, 1):
                uow.session.add(
                    TransactionAttempt(
                        transaction_id=tx_id, kind=AttemptKind.SEND, rung=rung,
                        raw=b"raw", hash="0x" + f"{n:062x}{rung:02x}",
                        sent_at=now + timedelta(seconds=rung),
                    )
                )  # fmt: skip
            for seq, status in enumerate(("QUEUED", "SUBMITTED", "MINED"), start=1):
                user.event_seq += 1
                uow.session.add(
                    TransactionEvent(
                        transaction_id=tx_id, user_id=user.id, seq=seq, user_seq=user.event_seq,
                        status=TransactionStatus(status), at=now,
                    )
                )  # fmt: skip
    await engine.dispose()


async def _page_cost(
    server: LiveServer, token: str, statements: list[str]
) -> tuple[int, dict[str, Any]]:
    statements.clear()
    body = await server.graphql(PAGE, token=token)
    assert "errors" not in body, body
    return len(statements), body["data"]["transactions"]


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[LiveServer]:
    # A page of 100 with every field is above the default static cost limit.
    settings = make_settings(tmp_path, database_url, max_query_cost=100_000)
    async with LiveServer(create_app(settings)) as live:
        yield live


async def test_a_page_costs_the_same_statements_for_2_rows_as_for_30(
    server: LiveServer, signer: DevSigner, database_url: str, statements: list[str]
) -> None:
    costs = []
    for rows, sub in ((2, "small"), (30, "large")):
        token = signer.mint(sub)
        created = await server.graphql(
            'mutation { createUser(input: {password: "correct horse"}) { id } }', token=token
        )
        assert "errors" not in created, created
        await _add_transactions(database_url, sub, rows)
        cost, page = await _page_cost(server, token, statements)
        nodes = [edge["node"] for edge in page["edges"]]
        assert len(nodes) == rows
        assert all(len(n["hashes"]) == 2 and len(n["events"]) == 3 for n in nodes)
        assert all(n["confirmations"] is not None and n["confirmations"] >= 1 for n in nodes)
        costs.append(cost)
    assert costs[0] == costs[1], statements
    assert costs[1] <= 4, statements  # the caller, the page, its hashes, its events


async def _add_event(
    database_url: str, sub: str, status: TransactionStatus, *, row_too: bool = True
) -> None:
    """One more event on each of ``sub``'s transactions (stored directly, as a worker would;
    without ``row_too`` the rows keep their ``last_seq``, as a row read before the event's
    commit has it)."""
    engine = create_async_engine(database_url)
    async with UnitsOfWork(engine).begin() as uow:
        user = (await uow.session.scalars(select(User).where(User.sub == sub))).one()
        for tx in await uow.session.scalars(
            select(Transaction).where(Transaction.user_id == user.id)
        ):
            seq = tx.last_seq + 1
            if row_too:
                tx.last_seq = seq
            user.event_seq += 1
            uow.session.add(
                TransactionEvent(
                    transaction_id=tx.id, user_id=user.id, seq=seq,
                    user_seq=user.event_seq, status=status, at=datetime.now(UTC),
                )
            )  # fmt: skip
    await engine.dispose()


async def test_each_operation_on_one_websocket_reads_the_events_afresh(
    server: LiveServer, signer: DevSigner, database_url: str
) -> None:
    # A websocket's operations share one context: the loaders' cache must not outlive one.
    token = signer.mint("ws")
    created = await server.graphql(
        'mutation { createUser(input: {password: "correct horse"}) { id } }', token=token
    )
    assert "errors" not in created, created
    await _add_transactions(database_url, "ws", 1)
    query = "{ transactions { edges { node { status events { status } } } } }"
    seen = []
    async with GraphQLWS(server.ws_url, token) as ws:
        for op_id in ("before", "after"):
            await ws.subscribe(op_id, query)
            [payload] = await ws.collect(op_id)
            [edge] = payload["data"]["transactions"]["edges"]
            seen.append([e["status"] for e in edge["node"]["events"]])
            await _add_event(database_url, "ws", TransactionStatus.CONFIRMED)
    assert seen == [["QUEUED", "SUBMITTED", "MINED"], ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]]


async def test_a_transactions_events_are_those_of_the_row_that_was_read(
    server: LiveServer, signer: DevSigner, database_url: str
) -> None:
    # The events are read by a later statement than the row: an event committed in between
    # (a fee bump's, beside the row's older hash) is not shown with the older row.
    token = signer.mint("skew")
    created = await server.graphql(
        'mutation { createUser(input: {password: "correct horse"}) { id } }', token=token
    )
    assert "errors" not in created, created
    await _add_transactions(database_url, "skew", 1)
    await _add_event(database_url, "skew", TransactionStatus.CONFIRMED, row_too=False)
    query = "{ transactions { edges { node { status events { seq status } } } } }"
    body = await server.graphql(query, token=token)
    [edge] = body["data"]["transactions"]["edges"]
    assert edge["node"]["status"] == "MINED"
    assert [e["status"] for e in edge["node"]["events"]] == ["QUEUED", "SUBMITTED", "MINED"]
