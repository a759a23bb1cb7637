"""A PostgreSQL server to create databases on, and fresh migrated databases on it.

URLs: walletql takes SQLAlchemy's ``postgresql+asyncpg://``; asyncpg takes ``postgresql://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg

from testkit import ROOT


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def on_database(dsn: str, name: str) -> str:
    """The same server's URL for the database ``name``."""
    base, _, _ = asyncpg_dsn(dsn).rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def postgres_server(*env_vars: str, data_dir: Path | None = None) -> Iterator[str]:
    """An admin DSN: the first of ``env_vars`` that is set, else an embedded server in
    ``data_dir`` (default .data/test), stopped on exit."""
    for name in env_vars:
        configured = os.environ.get(name)
        if configured:
            yield asyncpg_dsn(configured)
            return
    from walletql.embedded_pg import EmbeddedPostgres

    # Kept between runs (a cluster takes seconds to create); as root, the cluster itself lives
    # under /var/lib/walletql (walletql/pg_home.py).
    folder = data_dir or ROOT / ".data" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(folder, database="postgres")
    server.start()
    try:
        yield asyncpg_dsn(server.url)
    finally:
        server.stop()


async def admin_execute(admin_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(admin_dsn: str, name: str, *, template: str | None = None) -> str:
    """CREATE DATABASE (a copy of ``template``, if given); its SQLAlchemy URL."""
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(50):
        try:
            await admin_execute(admin_dsn, sql)
            break
        except asyncpg.ObjectInUseError:
            # "source database is being accessed by other users": autovacuum may visit
            # the template for a moment.
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)
    return sqlalchemy_url(on_database(admin_dsn, name))


async def drop_database(admin_dsn: str, name: str) -> None:
    await admin_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def fresh_database(
    admin_dsn: str, prefix: str = "walletql_t", *, template: str | None = None
) -> AsyncIterator[str]:
    """A new database, migrated (or copied from the migrated ``template``), dropped on exit;
    yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = await create_database(admin_dsn, name, template=template)
    try:
        if template is None:
            from walletql.migrate import upgrade

            await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await drop_database(admin_dsn, name)
