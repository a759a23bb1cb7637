"""Engine, session factory and the unit of work: the single transaction boundary."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.url import DatabaseUrl, as_database_url

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def create_engine(url: DatabaseUrl | str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for the parsed URL: its TLS, timeout and application name apply to every
    pooled connection."""
    database = as_database_url(url)
    # SQLAlchemy logs statements whenever its logger is enabled for INFO, as a global
    # DEBUG level would do; SQL text must never reach the logs.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return create_async_engine(
        database.sqlalchemy_url(),
        connect_args=database.connect_args(),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs three round trips per checkout. A connection that died
        # (a database restart) fails one statement and is then replaced by the pool.
        # Never echo: SQL text and parameters must not reach the logs.
        echo=False,
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads: autocommit, so a query is one round trip (no BEGIN/COMMIT)."""
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(reader, expire_on_commit=False, autoflush=False)


class UnitOfWork:
    """One database transaction plus the side effects that wait for its commit.

    Services receive ``uow.session`` and may register ``after_commit`` callbacks
    (queue sends, notifications); they never commit themselves.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._after_commit: list[AfterCommit] = []

    def after_commit(self, callback: AfterCommit) -> None:
        self._after_commit.append(callback)

    async def run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                # The data is committed; a sweeper makes up for a lost side effect.
                log.exception("after-commit callback failed")


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[UnitOfWork]:
    """Commit when the block succeeds, roll back when it raises, then run side effects."""
    async with factory() as session:
        uow = UnitOfWork(session)
        async with session.begin():
            yield uow
        await uow.run_after_commit()


@asynccontextmanager
async def read_only(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[UnitOfWork]:
    """A unit of work for queries: statements run in autocommit, nothing is committed."""
    async with factory() as session:
        yield UnitOfWork(session)
