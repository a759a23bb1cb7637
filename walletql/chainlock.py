"""One process owns the in-process EVM of a data directory and of a database.

Two `walletql serve` processes with the in-process EVM would run two different chains while
sharing one queue: each worker would broadcast the other's transactions to the wrong chain.
So the owner holds two locks for its whole life, and a second process refuses to start:
- an exclusive ``flock`` on ``<data dir>/embedded-chain.lock`` (the journal lives there);
- a PostgreSQL advisory lock in the database, on a connection whose ``application_name``
  names the owner. Both are released by the kernel or the server when the owner dies, even
  by SIGKILL, so nothing stale is left to clean up.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Any

from db.url import DatabaseUrl
from walletql.startup import StartupError

# pg_try_advisory_lock(int, int): "WQL" and 1, visible in pg_locks as classid/objid.
_LOCK_KEY = (0x57514C, 1)


class EmbeddedChainLock:
    def __init__(self, data_dir: Path, database_url: DatabaseUrl) -> None:
        self._path = data_dir.resolve() / "embedded-chain.lock"
        self._url = database_url
        self._fd: int | None = None
        self._conn: Any = None

    def _owner(self) -> str:
        return f"walletql pid {os.getpid()} on {socket.gethostname()}"

    async def acquire(self) -> None:
        """Both locks, or StartupError naming the process that holds them."""
        import asyncpg

        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StartupError(
                f"WALLETQL_DATA_DIR: {holder} already runs the embedded chain of "
                f"{self._path.parent}; stop it first (one embedded chain per data directory)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, self._owner().encode())
        self._fd = fd
        kwargs = self._url.asyncpg_kwargs()
        settings = {**kwargs.get("server_settings", {}), "application_name": self._owner()[:63]}
        conn = await asyncpg.connect(**{**kwargs, "server_settings": settings})
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *_LOCK_KEY):
            holder = await conn.fetchval(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 "
                "AND l.granted AND l.database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())",
                *_LOCK_KEY,
            )
            await conn.close()
            self.release()
            raise StartupError(
                f"WALLETQL_DATABASE_URL: {holder or 'another process'} already runs an embedded "
                "chain for this database; stop it, or give every process WALLETQL_CHAINS with "
                "one JSON-RPC node"
            )
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
