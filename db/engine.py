"""The engine and its session factories (the unit of work is in ``db/unit_of_work.py``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from db.url import DatabaseUrl, as_database_url


def create_engine(url: DatabaseUrl | str, *, pool_size: int = 20) -> AsyncEngine:
    """An engine for the parsed URL: its TLS, timeout and application name apply to every
    pooled connection."""
    database = as_database_url(url)
    # SQLAlchemy logs statements whenever its logger is enabled for INFO, as a global
    # DEBUG level would do; SQL text must never reach the logs.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return create_async_engine(
        database.sqlalchemy_url(),
        connect_args=database.connect_args(),
        # Connections are opened as needed and kept, up to pool_size; then a checkout waits.
        # No overflow: an overflow connection is closed as soon as it is given back, so a
        # steady load above the pool size paid a connection set-up (TLS included) per query.
        pool_size=pool_size,
        max_overflow=0,
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


@asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The driver's own connection (asyncpg) from the engine's pool, in autocommit, for a hot
    statement or two with none of SQLAlchemy's machinery; back to the pool at the end."""
    pooled = await engine.raw_connection()
    try:
        yield pooled.driver_connection
    finally:
        await greenlet_spawn(pooled.close)  # a reset may talk to the driver
