"""The unit of work: one per piece of work that arrives at an edge, opened and closed there.

A GraphQL mutation (``schema/unit_of_work.py``), a GraphQL query or pushed subscription item
(read-only), a queue message and a sweep (``worker/``) each get exactly one. Services receive
it and never commit: the edge commits when the work succeeds and rolls back when it raises.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import greenlet_spawn

from db.engine import create_read_session_factory, create_session_factory, pooled_driver

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


class ReadOnlyUnit(RuntimeError):
    """A query or a subscription tried to write."""


class UnitOfWork:
    """One database transaction, begun at its first statement, plus short reads on the side
    and the side effects that wait for the commit.

    No connection is held until ``session`` runs its first statement: a service does its
    slow parts (a KDF, RPC calls) first, through ``read()`` sessions that give their
    connection back at once, and touches ``session`` last."""

    def __init__(
        self,
        writes: async_sessionmaker[AsyncSession] | None,
        reads: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        self._writes = writes
        self._reads = reads
        self._engine = engine
        self._session: AsyncSession | None = None
        # (pooled connection, driver transaction) when the unit's transaction was begun on
        # the driver's connection (driver_in_transaction) rather than by the session.
        self._driven: tuple[Any, Any] | None = None
        self._after_commit: list[AfterCommit] = []

    @property
    def session(self) -> AsyncSession:
        """The unit's transaction (writes, and reads that must see them or lock rows)."""
        if self._session is None:
            if self._writes is None:
                raise ReadOnlyUnit("queries and subscriptions do not write")
            if self._driven is not None:
                raise RuntimeError("this unit's transaction is on the driver's connection")
            self._session = self._writes()
        return self._session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short autocommit session: one round trip per statement, and its connection goes
        back to the pool at the end of the block. Safe for concurrent resolvers."""
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg) from the engine's pool, for a hot read of one
        statement: no session or transaction to set up (it runs in autocommit), about half
        the CPU of a ``read()`` session. Back to the pool at the end of the block."""
        async with pooled_driver(self._engine) as driver:
            yield driver

    async def driver_in_transaction(self) -> Any:
        """The driver's own connection (asyncpg) in the unit's transaction, for a hot write of
        a few statements that need none of the ORM (a submit): what runs on it commits or
        rolls back with the unit. Begun here, the transaction has no session (``session``
        refuses to start a second one); begun by ``session``, it is the session's."""
        if self._session is not None:
            connection = await self._session.connection()
            driver: Any = (await connection.get_raw_connection()).driver_connection
            if not driver.is_in_transaction():
                # SQLAlchemy sends its BEGIN with the first statement it runs: one now.
                await connection.exec_driver_sql("SELECT 1")
            return driver
        if self._driven is None:
            if self._writes is None:
                raise ReadOnlyUnit("queries and subscriptions do not write")
            pooled = await self._engine.raw_connection()
            transaction = pooled.driver_connection.transaction()  # type: ignore[union-attr]
            try:
                await transaction.start()
            except BaseException:
                await greenlet_spawn(pooled.close)
                raise
            self._driven = (pooled, transaction)
        return self._driven[0].driver_connection

    @asynccontextmanager
    async def independent(self) -> AsyncIterator[AsyncSession]:
        """A separate transaction, committed at the end of the block whatever becomes of this
        unit (the password-failure counter outlives the failing request's rollback)."""
        if self._writes is None:
            raise ReadOnlyUnit("queries and subscriptions do not write")
        async with self._writes() as session, session.begin():
            yield session

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the unit has committed (queue sends, faucet gifts)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        if self._driven is not None:
            await self._driven[1].commit()
            # Back to the pool before the side effects, as a session's connection goes at its
            # commit: a queue send takes a connection of its own.
            await self._release_driver()
        elif self._session is not None and self._session.in_transaction():
            await self._session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                # The data is committed; a sweeper makes up for a lost side effect.
                log.exception("after-commit callback failed")

    async def rollback(self) -> None:
        self._after_commit = []
        if self._driven is not None:
            await self._driven[1].rollback()
        elif self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._release_driver()

    async def _release_driver(self) -> None:
        if self._driven is None:
            return
        pooled, transaction = self._driven
        self._driven = None
        try:
            if pooled.driver_connection.is_in_transaction():  # a commit or rollback failed
                await transaction.rollback()
        except Exception:
            await greenlet_spawn(pooled.invalidate)  # never back to the pool in a transaction
        await greenlet_spawn(pooled.close)  # a reset may talk to the driver


class UnitsOfWork:
    """Opens units of work on one engine. The edges hold it; services never see it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writes = create_session_factory(engine)
        self._reads = create_read_session_factory(engine)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """Commit when the block succeeds, roll back when it raises, then run side effects."""
        uow = UnitOfWork(self._writes, self._reads, self._engine)
        try:
            yield uow
        except BaseException:
            await uow.rollback()
            raise
        else:
            await uow.commit()
        finally:
            await uow.close()

    def read_only(self) -> UnitOfWork:
        """A unit for queries and subscriptions: reads only, nothing to commit."""
        return UnitOfWork(None, self._reads, self._engine)
