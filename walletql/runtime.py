"""The core runtime: what every process that moves transactions needs (database, chains,
queue, processor) and nothing of the API. ``walletql worker``, the Lambda handler and the
sweeper run on it alone; ``walletql/api_runtime.py`` builds the API on top of it.

Ports can be passed in where the runtime is built (a chain, a queue, a clock): tests and
fault drills replace them there instead of patching classes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.unit_of_work import UnitsOfWork
from db.url import DatabaseUrl
from services.chains import Chain, ChainConfig, Chains
from services.pipeline import TransactionProcessor
from services.queues import Queue
from walletql.settings import Settings
from worker.runner import Worker, WorkerSettings
from worker.sweeper import Sweeper

log = logging.getLogger("walletql")

Clock = Callable[[], datetime]
Closer = Callable[[], object]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CoreRuntime:
    """Process resources that outlive requests and messages; closed in reverse order."""

    settings: Settings
    engine: AsyncEngine
    units: UnitsOfWork
    chains: Chains
    queue: Queue
    processor: TransactionProcessor
    clock: Clock
    closers: list[Closer] = field(default_factory=list)

    def worker(self) -> Worker:
        settings = self.settings
        return Worker(
            self.units,
            self.queue,
            self.processor,
            WorkerSettings(
                concurrency=settings.worker_concurrency,
                visibility_timeout=settings.queue_visibility_timeout_seconds,
                max_receives=settings.queue_max_receives,
                wait_seconds=settings.queue_wait_seconds,
            ),
        )

    def sweeper(self) -> Sweeper:
        return Sweeper(
            self.units,
            self.queue,
            grace_seconds=self.settings.sweeper_grace_seconds,
            clock=self.clock,
        )

    async def run_worker(self, stop: asyncio.Event) -> None:
        """The worker and the sweeper, until ``stop`` is set."""
        await asyncio.gather(
            self.worker().run(stop),
            self.sweeper().run(stop, self.settings.sweeper_interval_seconds),
        )

    async def close(self) -> None:
        for close in reversed(self.closers):
            result = close()
            if inspect.isawaitable(result):
                await result


def build_queue(settings: Settings, engine: AsyncEngine) -> Queue:
    if settings.queue_backend == "sqs":
        from services.queues.sqs import SqsQueue

        assert settings.sqs_queue_url
        return SqsQueue(
            settings.sqs_queue_url,
            region=settings.sqs_region,
            endpoint_url=settings.sqs_endpoint_url,
            dead_letter_url=settings.sqs_dead_letter_url,
        )
    from services.queues.postgres import PostgresQueue

    return PostgresQueue(engine, settings.queue_name)


def build_chains(
    settings: Settings, client: Callable[[ChainConfig, float], Chain] = Chain
) -> Chains:
    configs = [ChainConfig(**c.model_dump()) for c in settings.chains]
    chains = Chains(
        configs, settings.chain_timeout_seconds, client=client, data_dir=settings.data_dir
    )
    chains.open_embedded()
    return chains


async def start_core(
    settings: Settings,
    database_url: DatabaseUrl | str,
    *,
    chains: Chains | None = None,
    queue: Queue | None = None,
    clock: Clock = utc_now,
) -> CoreRuntime:
    """Build the core for one process. ``database_url`` is already resolved; ``chains``,
    ``queue`` and ``clock`` replace the configured ones (the runtime closes them too)."""
    engine = create_engine(database_url, pool_size=settings.database_pool_size)
    chains = chains or build_chains(settings)
    queue = queue or build_queue(settings, engine)
    processor = TransactionProcessor(
        chains, check_interval=settings.worker_check_interval_seconds, clock=clock
    )
    return CoreRuntime(
        settings=settings,
        engine=engine,
        units=UnitsOfWork(engine),
        chains=chains,
        queue=queue,
        processor=processor,
        clock=clock,
        closers=[engine.dispose, chains.close, queue.close],
    )


async def serve_worker(
    settings: Settings, database_url: DatabaseUrl | str, *, chains: Chains | None = None
) -> None:
    """``walletql worker``: the worker and the sweeper until SIGTERM or SIGINT."""
    runtime = await start_core(settings, database_url, chains=chains)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started (queue: %s)", settings.queue_backend)
    try:
        await runtime.run_worker(stop)
    finally:
        await runtime.close()
