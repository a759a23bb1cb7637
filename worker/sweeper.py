"""Makes up for lost queue messages: re-enqueues tracked transactions whose check is overdue
(the API died between commit and enqueue, or a worker died before re-enqueueing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from db.transactions_repo import TransactionRepository
from db.unit_of_work import UnitsOfWork
from services.logs import describe_exception
from services.queues import Queue

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        units: UnitsOfWork,
        queue: Queue,
        *,
        grace_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._units = units
        self._queue = queue
        self._grace = timedelta(seconds=grace_seconds)
        self._clock = clock

    async def sweep(self) -> int:
        """Re-enqueue every overdue transaction once (one unit of work); returns how many."""
        now = self._clock()
        async with self._units.begin() as uow:
            repo = TransactionRepository.from_session(uow.session)
            ids = await repo.overdue(now - self._grace)
            await repo.set_next_check(ids, now)
        for tx_id in ids:
            await self._queue.send(str(tx_id), dedup_id=f"{tx_id}:sweep:{now.timestamp()}")
        if ids:
            log.info("sweeper re-enqueued %d overdue transactions", len(ids))
        return len(ids)

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:
                log.error("sweep failed: %s", describe_exception(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
