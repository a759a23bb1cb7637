"""A unit of work whose transaction runs on the driver's connection (a submit's) commits and
rolls back like any other, and never gives its connection back to the pool mid-transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.unit_of_work import UnitsOfWork

INSERT_USER = "INSERT INTO users (id, sub) VALUES ($1, $2)"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # One connection: a unit that kept it through its side effects, or gave it back inside a
    # transaction, would show.
    engine = create_engine(database_url, pool_size=1)
    yield engine
    await engine.dispose()


async def _subs(units: UnitsOfWork) -> list[str]:
    async with units.read_only().driver() as driver:
        assert not driver.is_in_transaction()
        return [row[0] for row in await driver.fetch("SELECT sub FROM users ORDER BY sub")]


async def test_driver_writes_commit_with_the_unit_and_side_effects_follow(
    engine: AsyncEngine,
) -> None:
    units, sent = UnitsOfWork(engine), []

    async def send() -> None:
        sent.append(await _subs(units))

    async with units.begin() as uow:
        driver = await uow.driver_in_transaction()
        await driver.execute(INSERT_USER, uuid.uuid4(), "a")
        assert await uow.driver_in_transaction() is driver  # one transaction per unit
        uow.after_commit(send)
    assert sent == [["a"]]


async def test_driver_writes_roll_back_when_the_unit_raises(engine: AsyncEngine) -> None:
    units = UnitsOfWork(engine)

    async def refused() -> None:
        async with units.begin() as uow:
            driver = await uow.driver_in_transaction()
            await driver.execute(INSERT_USER, uuid.uuid4(), "b")
            uow.after_commit(pytest.fail)
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await refused()
    assert await _subs(units) == []


async def test_a_cancelled_unit_leaves_nothing_and_its_connection_clean(
    engine: AsyncEngine,
) -> None:
    units, inserted = UnitsOfWork(engine), asyncio.Event()

    async def hang() -> None:
        async with units.begin() as uow:
            driver = await uow.driver_in_transaction()
            await driver.execute(INSERT_USER, uuid.uuid4(), "c")
            inserted.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _subs(units) == []


async def test_a_driver_transaction_has_no_session_beside_it(engine: AsyncEngine) -> None:
    async with UnitsOfWork(engine).begin() as uow:
        await uow.driver_in_transaction()
        with pytest.raises(RuntimeError, match="driver's connection"):
            _ = uow.session


async def test_a_session_transaction_lends_its_connection_to_the_driver(
    engine: AsyncEngine,
) -> None:
    units = UnitsOfWork(engine)

    async def refused() -> None:
        async with units.begin() as uow:
            await uow.session.connection()
            driver = await uow.driver_in_transaction()
            assert driver.is_in_transaction()
            await driver.execute(INSERT_USER, uuid.uuid4(), "d")
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await refused()
    assert await _subs(units) == []
