"""The queue consumer: receive transaction ids, advance each one, re-enqueue with a delay.
Each message gets its own unit of work, opened and committed here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from db.unit_of_work import UnitsOfWork
from services import metrics
from services.causes import public_cause
from services.errors import ChainUnavailable
from services.logs import describe_exception
from services.pipeline import TransactionProcessor
from services.queues import Message, Queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 4
    visibility_timeout: int = 60
    max_receives: int = 5
    wait_seconds: float = 10.0
    shutdown_grace: float = 20.0


class Worker:
    def __init__(
        self,
        units: UnitsOfWork,
        queue: Queue,
        processor: TransactionProcessor,
        settings: WorkerSettings,
    ) -> None:
        self._units = units
        self._queue = queue
        self._processor = processor
        self._settings = settings
        self._in_flight: dict[asyncio.Task[bool], Message] = {}

    async def handle(self, message: Message) -> bool:
        """Process one delivery; True when it was acked (done or re-enqueued)."""
        try:
            tx_id = uuid.UUID(message.body)
        except ValueError:
            await self._queue.dead_letter(message, "the message is not a transaction id")
            metrics.QUEUE_DEAD_LETTERED.inc()
            return True
        if message.receive_count > self._settings.max_receives:
            reason = f"received {message.receive_count} times without being processed"
            async with self._units.begin() as uow:
                reason = await self._processor.dead_letter(uow, tx_id, reason)
            await self._queue.dead_letter(message, reason)
            metrics.QUEUE_DEAD_LETTERED.inc()
            return True
        if message.receive_count > 1:
            # An earlier delivery did not finish; told, unless its failure already was.
            await self._note_retry(
                tx_id,
                f"delivery {message.receive_count} of {self._settings.max_receives}: the one "
                "before did not finish (a worker stopped or ran out of time)",
                unless_told=True,
            )
        try:
            delay = await self._process(tx_id)
            if delay is not None:
                await self._queue.send(
                    message.body, delay_seconds=delay, dedup_id=f"{tx_id}:{uuid.uuid4()}"
                )
            await self._queue.ack(message)
        except Exception as exc:
            # Left unacked: it comes back after the visibility timeout, counted as a receive.
            log.error("processing %s failed: %s", message.body, describe_exception(exc))
            metrics.QUEUE_FAILED.inc()
            settings = self._settings
            await self._note_retry(
                tx_id,
                f"delivery {message.receive_count} of {settings.max_receives} failed: "
                f"{public_cause(exc)}; it comes back after the visibility timeout",
            )
            return False
        metrics.QUEUE_PROCESSED.inc()
        return True

    async def _process(self, tx_id: uuid.UUID) -> float | None:
        try:
            async with self._units.begin() as uow:
                return await self._processor.process(uow, tx_id)
        except ChainUnavailable as exc:
            log.warning("chain unavailable while processing %s; retrying later", tx_id)
            delay = self._processor.unavailable_delay
            await self._note_retry(tx_id, f"{exc.message}; looking again in {delay:g} s")
            return delay

    async def _note_retry(self, tx_id: uuid.UUID, cause: str, *, unless_told: bool = False) -> None:
        """Tell the transaction's owner why its look failed (a failure here is only logged)."""
        try:
            async with self._units.begin() as uow:
                await self._processor.note_retry(uow, tx_id, cause, unless_told=unless_told)
        except Exception as exc:
            log.error("could not record why %s is retried: %s", tx_id, describe_exception(exc))

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish or release the messages in hand."""
        settings = self._settings
        while not stop.is_set():
            free = settings.concurrency - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            receive = asyncio.ensure_future(
                self._queue.receive(
                    max_messages=min(free, 10),
                    wait_seconds=settings.wait_seconds,
                    visibility_timeout=settings.visibility_timeout,
                )
            )
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if receive not in done:
                receive.cancel()
                break
            try:
                messages = receive.result()
            except Exception as exc:
                log.error("queue receive failed: %s", describe_exception(exc))
                await asyncio.sleep(1)
                continue
            for message in messages:
                task = asyncio.create_task(self.handle(message))
                self._in_flight[task] = message
                task.add_done_callback(self._done)
        await self._drain()

    def _done(self, task: asyncio.Task[bool]) -> None:
        self._in_flight.pop(task, None)

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        pending = dict(self._in_flight)
        _, unfinished = await asyncio.wait(pending, timeout=self._settings.shutdown_grace)
        for task in unfinished:
            task.cancel()
            # Make it visible again at once for another worker.
            await self._queue.extend(pending[task], 0)
        log.info(
            "worker stopped (%d finished, %d released)",
            len(pending) - len(unfinished),
            len(unfinished),
        )
