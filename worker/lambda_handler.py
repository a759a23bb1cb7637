"""AWS Lambda entry point for the worker: an SQS event source mapping delivers batches.

Deploy with ``ReportBatchItemFailures`` enabled on the event source mapping: a record whose
processing raised is returned in ``batchItemFailures`` and comes back after the queue's
visibility timeout; the others are deleted. Settings come from ``WALLETQL_*`` variables
(``WALLETQL_QUEUE_BACKEND=sqs``, ``WALLETQL_SQS_QUEUE_URL``, ``WALLETQL_DATABASE_URL``, …).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from services.queues import Message
from walletql.settings import Settings

if TYPE_CHECKING:
    from walletql.runtime import CoreRuntime

# One event loop and one runtime per warm Lambda container: pools and clients are bound
# to the loop they were created on, so the loop outlives single invocations.
_loop: asyncio.AbstractEventLoop | None = None
_handler: BatchHandler | None = None


class BatchHandler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: CoreRuntime | None = None

    async def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        from walletql.runtime import start_core

        if self._runtime is None:
            url = self.settings.database_url
            if url is None:
                raise RuntimeError("the Lambda worker needs WALLETQL_DATABASE_URL")
            self._runtime = await start_core(self.settings, url.get_secret_value())
        worker = self._runtime.worker()
        failures = []
        for record in event.get("Records", []):
            message = Message(
                id=record["messageId"],
                body=record["body"],
                receive_count=int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)),
                receipt=record["receiptHandle"],
            )
            if not await worker.handle(message):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    async def close(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None


def handler(event: dict[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
    """The Lambda function handler: ``worker.lambda_handler.handler``."""
    global _loop, _handler
    if _loop is None:
        _loop = asyncio.new_event_loop()
    if _handler is None:
        from services.logs import install_redaction

        install_redaction()  # on the Lambda runtime's own log handler
        _handler = BatchHandler(Settings())
    return _loop.run_until_complete(_handler.handle(event))
