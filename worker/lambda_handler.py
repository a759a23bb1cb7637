"""AWS Lambda entry point for the worker: an SQS event source mapping delivers batches.

Deploy with ``ReportBatchItemFailures`` enabled on the event source mapping: a record whose
processing raised is returned in ``batchItemFailures`` and comes back after the queue's
visibility timeout; the others are deleted. Settings come from ``WALLETQL_*`` variables
(``WALLETQL_QUEUE_BACKEND=sqs``, ``WALLETQL_SQS_QUEUE_URL``, ``WALLETQL_DATABASE_URL``, …).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from services.queues import Message
from walletql.settings import Settings
from walletql.startup import StartupError, load_settings

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
            from walletql.schema_version import ensure_schema

            url = self.settings.database
            if url is None:
                raise StartupError("the Lambda worker needs WALLETQL_DATABASE_URL")
            await ensure_schema(url, migrate=self.settings.should_migrate_on_start)
            self._runtime = await start_core(self.settings, url)
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
    try:
        if _handler is None:
            from services.logs import install_redaction

            install_redaction()  # on the Lambda runtime's own log handler
            _handler = BatchHandler(load_settings())
        return _loop.run_until_complete(_handler.handle(event))
    except StartupError as exc:
        # One line in the function's log and a failed init (Runtime.ExitError), instead of a
        # traceback on every invocation of a container that can never work.
        print(f"walletql: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
