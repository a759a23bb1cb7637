"""The pub/sub port's PostgreSQL adapter: one LISTEN connection per process.

It feeds the EventHub, and re-establishes itself when the connection drops; after each
reconnect every subscriber catches up from the event log, so a notification lost while
disconnected never means a lost event. (A Redis pub/sub adapter would implement the same
``start``/``close`` and call the same two hub methods.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from services.events import CHANNEL
from services.hub import EventHub

log = logging.getLogger(__name__)
# How operators (and the readiness tests) find this connection in pg_stat_activity, unless
# the database URL names the application (then every connection carries that name).
APPLICATION_NAME = "walletql-listener"


class PostgresListener:
    def __init__(
        self, connect_args: dict[str, Any], hub: EventHub, *, health_interval: float = 2.0
    ) -> None:
        """``connect_args``: everything ``asyncpg.connect`` needs (address, TLS, timeout)."""
        server_settings = {"application_name": APPLICATION_NAME}
        server_settings.update(connect_args.get("server_settings") or {})
        self._connect_args = {**connect_args, "server_settings": server_settings}
        self._hub = hub
        self._health_interval = health_interval
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self.reconnects = 0

    @property
    def listening(self) -> bool:
        return self._listening

    def _on_notify(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._hub.publish(payload)

    def start(self) -> None:
        """Connect and listen, in the background: the API answers meanwhile. Subscribers that
        come before the first LISTEN is in place catch up from the event log once it is, as
        after a reconnect; until then ``listening`` is false (and /readyz says 503)."""
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                connection = await asyncpg.connect(**self._connect_args)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event listener cannot connect (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await connection.add_listener(CHANNEL, self._on_notify)
                backoff = 0.1
                if not first:
                    self.reconnects += 1
                    log.info("event listener reconnected; subscribers catch up from the log")
                # Events committed before this LISTEN reached no one: whoever subscribed
                # meanwhile (before the first one too) re-reads the log.
                self._hub.catch_up_all()
                first = False
                self._listening = True
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=self._health_interval)
                    if not lost.is_set():
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event listener lost its connection (%s)", type(exc).__name__)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await connection.close(timeout=1)
            # Events may have been committed while we were away.
            self._hub.catch_up_all()

    async def close(self) -> None:
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
