"""moto's SQS server in-process (a thread on 127.0.0.1), queues on it, and reading them."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aioboto3
from moto.server import ThreadedMotoServer
from moto.sqs.models import SQSBackend

from testkit.net import free_port

REGION = "us-east-1"
# moto accepts any credentials; passed explicitly so nothing reads or changes os.environ.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"


def _atomic_receives() -> Any:
    """moto's ReceiveMessage, with each look at a queue atomic as SQS's is.

    moto serves every request in a thread of its own and scans a queue's messages without a
    lock: two receives at the same moment could both take one message (seen as 21 deliveries
    of 20 messages with 5 concurrent receivers). Here each scan runs under one lock, and a
    long poll waits for messages outside it, so waiting receivers do not hold up others."""
    original = SQSBackend.receive_message
    scans = threading.Lock()

    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with scans:
                got = original(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            self.get_queue(queue_name).wait_for_messages(min(1.0, left))  # type: ignore[arg-type]

    return original, receive_message


class MotoSqsServer:
    """``with MotoSqsServer() as moto: moto.endpoint_url`` — stopped and joined on exit.
    A fake's fix: its receives are made atomic (``_atomic_receives``) while it runs."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._werkzeug_level = logging.NOTSET
        self._threads_before: set[threading.Thread] = set()

    def __enter__(self) -> MotoSqsServer:
        # werkzeug logs every request line at INFO; keep the test output readable.
        werkzeug_log = logging.getLogger("werkzeug")
        self._werkzeug_level = werkzeug_log.level
        werkzeug_log.setLevel(logging.WARNING)
        self._threads_before = set(threading.enumerate())
        self._receive, atomic = _atomic_receives()
        SQSBackend.receive_message = atomic  # type: ignore[method-assign]
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()  # shutdown() and join the serving thread
        SQSBackend.receive_message = self._receive  # type: ignore[method-assign]
        # stop() leaves the listening socket open (a ResourceWarning once collected).
        wsgi_server = getattr(self._server, "_server", None)
        if wsgi_server is not None:
            wsgi_server.server_close()
        logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
        self._join_request_threads()

    def _server_threads(self) -> list[threading.Thread]:
        # Python names a thread after its target: the serving loop and one per connection.
        return [
            thread
            for thread in set(threading.enumerate()) - self._threads_before
            if thread.name.endswith(("(_server_entry)", "(process_request_thread)"))
        ]

    def _join_request_threads(self, timeout: float = 5.0) -> None:
        """Request threads are daemons that live as long as their keep-alive connection:
        once every client is closed they end; wait for that rather than leak them."""
        deadline = time.monotonic() + timeout
        for thread in self._server_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [thread.name for thread in self._server_threads() if thread.is_alive()]
        if left:
            raise RuntimeError(f"moto server threads still running: {left}")


@dataclass(frozen=True)
class SqsQueues:
    """URLs of the queues one test uses: standard + DLQ, FIFO + FIFO DLQ."""

    standard_url: str
    standard_dlq_url: str
    fifo_url: str
    fifo_dlq_url: str


def sqs_client(endpoint_url: str) -> Any:
    """An aioboto3 SQS client context manager against moto (``async with``)."""
    session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    return session.client("sqs", endpoint_url=endpoint_url)


async def create_queues(endpoint_url: str, prefix: str | None = None) -> SqsQueues:
    """Fresh, uniquely named queues (tests share one moto server)."""
    prefix = prefix or f"t{uuid.uuid4().hex[:12]}"
    async with sqs_client(endpoint_url) as sqs:

        async def create(name: str, **attributes: str) -> str:
            response = await sqs.create_queue(QueueName=name, Attributes=attributes)
            url: str = response["QueueUrl"]
            return url

        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        return SqsQueues(
            standard_url=await create(f"{prefix}-main"),
            standard_dlq_url=await create(f"{prefix}-dlq"),
            fifo_url=await create(f"{prefix}-main.fifo", **fifo),
            fifo_dlq_url=await create(f"{prefix}-dlq.fifo", **fifo),
        )


async def receive_all(endpoint_url: str, queue_url: str, wait_seconds: int = 1) -> list[Any]:
    """Every message currently in ``queue_url`` (with its message attributes), deleted."""
    found: list[Any] = []
    async with sqs_client(endpoint_url) as sqs:
        while True:
            response = await sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_seconds if not found else 0,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            if not batch:
                return found
            found.extend(batch)
            for message in batch:
                await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


async def sqs_record(endpoint_url: str, queue_url: str) -> dict[str, Any]:
    """One message from the queue, shaped like an SQS event source mapping's record."""
    async with sqs_client(endpoint_url) as sqs:
        response = await sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )  # fmt: skip
    [message] = response["Messages"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
        "eventSource": "aws:sqs",
    }
