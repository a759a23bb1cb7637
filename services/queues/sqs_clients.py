"""How ``SqsQueue`` reaches SQS: aioboto3 (async HTTP), or botocore in a thread.

Both raise botocore's exceptions, so ``SqsQueue`` holds every SQS rule once. The threaded
client is what the Lambda package uses: the AWS Python runtime ships botocore, while
aiobotocore pins botocore to a narrow range that the runtime's copy need not match (and would
add aiohttp to the zip). Elsewhere aioboto3 is used when it is installed.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, Protocol

SqsTransport = Literal["aioboto3", "botocore"]


@dataclass(frozen=True)
class SqsEndpoint:
    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None  # None: the AWS credential chain (env, role, …)
    secret_access_key: str | None = None


class SqsClient(Protocol):
    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def default_transport() -> SqsTransport:
    return "aioboto3" if importlib.util.find_spec("aioboto3") is not None else "botocore"


def sqs_client(endpoint: SqsEndpoint, transport: SqsTransport | None = None) -> SqsClient:
    if (transport or default_transport()) == "aioboto3":
        return AioSqsClient(endpoint)
    return ThreadedSqsClient(endpoint)


class AioSqsClient:
    """One long-lived aioboto3 client, opened on first use."""

    def __init__(self, endpoint: SqsEndpoint) -> None:
        self._endpoint = endpoint
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def _sqs(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    import aioboto3

                    session = aioboto3.Session(
                        aws_access_key_id=self._endpoint.access_key_id,
                        aws_secret_access_key=self._endpoint.secret_access_key,
                        region_name=self._endpoint.region,
                    )
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        session.client("sqs", endpoint_url=self._endpoint.endpoint_url)
                    )
                    self._stack = stack
        return self._client

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        client = await self._sqs()
        response: dict[str, Any] = await getattr(client, operation)(**params)
        return response

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


class ThreadedSqsClient:
    """A botocore client (thread-safe) whose blocking calls run on threads of its own, so a
    20 s long poll never holds a thread the event loop's other work needs."""

    def __init__(self, endpoint: SqsEndpoint, threads: int = 8) -> None:
        self._endpoint = endpoint
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    def _create(self) -> Any:
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "sqs",
            region_name=self._endpoint.region,
            endpoint_url=self._endpoint.endpoint_url,
            aws_access_key_id=self._endpoint.access_key_id,
            aws_secret_access_key=self._endpoint.secret_access_key,
            config=Config(max_pool_connections=self._threads),
        )

    async def _run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    self._executor = ThreadPoolExecutor(self._threads, "walletql-sqs")
                    # Loading the service model takes a while: off the event loop too.
                    self._client = await self._run(self._create)
        response: dict[str, Any] = await self._run(getattr(self._client, operation), **params)
        return response

    async def close(self) -> None:
        client, executor = self._client, self._executor
        self._client = self._executor = None
        if executor is not None:
            # Calls in flight (a long poll) finish first; no thread outlives the client.
            await asyncio.to_thread(executor.shutdown, wait=True)
        if client is not None:
            client.close()
