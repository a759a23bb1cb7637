"""The SQS queue adapter, for standard and FIFO queues, over aioboto3 or botocore in a
thread (``sqs_clients.py``).

Delays are whole seconds in SQS: a fractional ``delay_seconds`` is rounded up. FIFO queues
(URL ending in ``.fifo``) refuse per-message delays, so a delayed FIFO message carries its due
time in the ``not_before`` message attribute (epoch seconds) and ``receive`` hides a message
that is not due yet again for the remaining time instead of returning it. Such a message
holds back its message group until it is due, as FIFO ordering requires, and that early
receive is not counted in ``receive_count``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.queues import Message, Queue
from services.queues.sqs_clients import SqsEndpoint, SqsTransport, sqs_client

log = logging.getLogger(__name__)

NOT_BEFORE = "not_before"
DEFAULT_GROUP = "default"
DEAD_LETTER_GROUP = "dead-letter"
_MAX_WAIT = 20
_MAX_BATCH = 10


class QueueError(RuntimeError):
    """An SQS call failed (its error code is in the message)."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}"
    return str(exc)


class SqsQueue(Queue):
    """One SQS queue; one long-lived client, opened on first use and closed by ``close()``."""

    def __init__(
        self,
        queue_url: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        dead_letter_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        transport: SqsTransport | None = None,
    ) -> None:
        """``transport``: None picks aioboto3 when it is installed, else botocore."""
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self.fifo = queue_url.endswith(".fifo")
        endpoint = SqsEndpoint(region, endpoint_url, access_key_id, secret_access_key)
        self._client = sqs_client(endpoint, transport)

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return await self._client.call(operation, params)
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(f"SQS {operation} failed: {_describe(exc)}") from exc

    async def _send(
        self, body: str, delay_seconds: float, group_id: str | None, dedup_id: str | None
    ) -> None:
        params: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if self.fifo:
            params["MessageGroupId"] = group_id or DEFAULT_GROUP
            # Content-based deduplication may be off, and two equal bodies are two messages.
            params["MessageDeduplicationId"] = (
                dedup_id or hashlib.sha256(f"{body}\x00{time.time_ns()}".encode()).hexdigest()
            )
            if delay_seconds > 0:
                due = time.time() + delay_seconds
                params["MessageAttributes"] = {
                    NOT_BEFORE: {"DataType": "Number", "StringValue": f"{due:.3f}"}
                }
        elif delay_seconds > 0:
            params["DelaySeconds"] = math.ceil(delay_seconds)
        await self._call("send_message", **params)

    async def _receive(
        self, max_messages: int, remaining: Callable[[], float], visibility_timeout: int
    ) -> list[Message]:
        while True:
            wait = int(min(_MAX_WAIT, remaining()))
            response = await self._call(
                "receive_message",
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(_MAX_BATCH, max_messages),
                WaitTimeSeconds=wait,
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=[
                    "ApproximateReceiveCount",
                    "ApproximateFirstReceiveTimestamp",
                ],
                MessageAttributeNames=["All"],
            )
            messages = [
                message
                for raw in response.get("Messages", [])
                if (message := await self._deliverable(raw)) is not None
            ]
            # Only not-yet-due FIFO messages came back: poll again while time is left.
            if messages or wait == 0:
                return messages

    async def _deliverable(self, raw: dict[str, Any]) -> Message | None:
        """The delivery as a Message, or None for a FIFO message that is not due yet."""
        attributes: dict[str, str] = raw.get("Attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        not_before_attribute = raw.get("MessageAttributes", {}).get(NOT_BEFORE)
        if not_before_attribute is not None:
            not_before = float(not_before_attribute["StringValue"])
            remaining = not_before - time.time()
            if remaining > 0:
                try:
                    await self._call(
                        "change_message_visibility",
                        QueueUrl=self.queue_url,
                        ReceiptHandle=raw["ReceiptHandle"],
                        VisibilityTimeout=math.ceil(remaining),
                    )
                except QueueError as exc:
                    # Still hidden for this receive's visibility timeout: retried then.
                    log.warning("could not hide a FIFO message until due: %s", exc)
                return None
            # A receive before the due time hid the message again; it was no delivery.
            first_receive_ms = int(attributes.get("ApproximateFirstReceiveTimestamp", "0"))
            if 0 < first_receive_ms < not_before * 1000 and receive_count > 1:
                receive_count -= 1
        return Message(
            id=raw["MessageId"],
            body=raw["Body"],
            receive_count=receive_count,
            receipt=raw["ReceiptHandle"],
        )

    async def ack(self, message: Message) -> None:
        await self._call("delete_message", QueueUrl=self.queue_url, ReceiptHandle=message.receipt)

    async def _extend(self, message: Message, seconds: int) -> None:
        await self._call(
            "change_message_visibility",
            QueueUrl=self.queue_url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=seconds,
        )

    async def dead_letter(self, message: Message, reason: str) -> None:
        """Send the body to the dead-letter queue, then delete the message from this one."""
        if self.dead_letter_url is None:
            raise QueueError(
                f"no dead-letter queue configured for {self.queue_url}: "
                "set dead_letter_url to dead-letter messages"
            )
        params: dict[str, Any] = {
            "QueueUrl": self.dead_letter_url,
            "MessageBody": message.body,
            "MessageAttributes": {
                # SQS refuses empty attribute values.
                "reason": {"DataType": "String", "StringValue": reason or "unspecified"},
                "message_id": {"DataType": "String", "StringValue": message.id},
                "receive_count": {
                    "DataType": "Number",
                    "StringValue": str(message.receive_count),
                },
            },
        }
        if self.dead_letter_url.endswith(".fifo"):
            params["MessageGroupId"] = DEAD_LETTER_GROUP
            # Keyed by the message: dead-lettering it again after a failed delete is a no-op.
            params["MessageDeduplicationId"] = hashlib.sha256(
                f"{self.queue_url}\x00{message.id}".encode()
            ).hexdigest()
        await self._call("send_message", **params)
        await self.ack(message)

    async def close(self) -> None:
        await self._client.close()
