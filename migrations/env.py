"""Alembic environment (async, asyncpg). ``walletql migrate`` runs it."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from db.engine import create_engine
from db.models import Base
from db.url import DatabaseUrl, parse_database_url

config = context.config
target_metadata = Base.metadata


def _database_url() -> DatabaseUrl:
    """The URL ``walletql.migrate.alembic_config`` parsed, else the ini's ``sqlalchemy.url``."""
    parsed = config.attributes.get("database_url")
    if isinstance(parsed, DatabaseUrl):
        return parsed
    return parse_database_url(config.get_main_option("sqlalchemy.url") or "")


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_database_url(), pool_size=1)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
