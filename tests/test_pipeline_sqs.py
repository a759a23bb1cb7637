"""The pipeline on SQS (moto's server over HTTP, through the production adapter), and the
AWS Lambda handler fed real SQS messages."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import PipelineSettings
from testkit.pipeline import fetch, mine, new_wallet, pipeline_server, submit, wait_for
from testkit.sqs import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoSqsServer,
    create_queues,
    sqs_record,
)
from walletql.devauth import DevSigner
from walletql.settings import Settings
from worker.lambda_handler import BatchHandler


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the AWS credential chain reads in production; moto accepts any values.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)


def sqs_settings(
    pipeline: PipelineSettings,
    anvil: Anvil,
    moto: MotoSqsServer,
    url: str,
    dlq: str,
    **extra: Any,
) -> Settings:
    return pipeline(
        anvil, queue_backend="sqs", sqs_queue_url=url,
        sqs_dead_letter_url=dlq, sqs_endpoint_url=moto.endpoint_url, sqs_region=REGION, **extra,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["standard", "fifo"])
@pytest.mark.usefixtures("aws_credentials")
async def test_submit_reaches_confirmed_through_sqs(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], pipeline: PipelineSettings, signer: DevSigner,
    moto_sqs: MotoSqsServer, kind: str,
) -> None:  # fmt: skip
    queues = await create_queues(moto_sqs.endpoint_url)
    url, dlq = (
        (queues.fifo_url, queues.fifo_dlq_url) if kind == "fifo"
        else (queues.standard_url, queues.standard_dlq_url)
    )  # fmt: skip
    settings = sqs_settings(pipeline, anvil, moto_sqs, url, dlq, chain={"confirmations": 2})
    async with pipeline_server(settings) as server:
        token, _ = await new_wallet(server, signer, "alice", anvil_w3)
        queued = await submit(server, token)
        await wait_for(server, token, queued["id"], "MINED")
        await mine(anvil_w3)
        done = await wait_for(server, token, queued["id"], "CONFIRMED")
    assert [e["status"] for e in done["events"]] == ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]


@pytest.mark.usefixtures("aws_credentials")
async def test_lambda_handler_processes_an_sqs_batch_and_reports_failures(
    anvil: Anvil,
    anvil_w3: AsyncWeb3[Any],
    pipeline: PipelineSettings,
    signer: DevSigner,
    moto_sqs: MotoSqsServer,
) -> None:
    queues = await create_queues(moto_sqs.endpoint_url)
    settings = sqs_settings(pipeline, anvil, moto_sqs, queues.standard_url, queues.standard_dlq_url)
    async with pipeline_server(settings, run_worker=False) as api:
        token, _ = await new_wallet(api, signer, "alice", anvil_w3)
        queued = await submit(api, token)
        record = await sqs_record(moto_sqs.endpoint_url, queues.standard_url)
        assert record["body"] == queued["id"]
        # A worker configured without this chain cannot process it: a reported failure.
        chain = settings.chains[0].model_copy(update={"chain_id": 99})
        broken = BatchHandler(settings.model_copy(update={"chains": [chain]}))
        try:
            failed = await broken.handle({"Records": [record]})
        finally:
            await broken.close()
        assert failed == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        # As the event source mapping would: deliver each message the worker enqueues next.
        handler = BatchHandler(settings)
        try:
            for _ in range(10):
                assert await handler.handle({"Records": [record]}) == {"batchItemFailures": []}
                if (await fetch(api, token, queued["id"]))["status"] == "CONFIRMED":
                    break
                record = await sqs_record(moto_sqs.endpoint_url, queues.standard_url)
        finally:
            await handler.close()
        done = await wait_for(api, token, queued["id"], "CONFIRMED")
    statuses = ["QUEUED", "QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]
    assert [e["status"] for e in done["events"]] == statuses
    # The failed delivery was told to the owner at once, in words that say why.
    assert done["events"][1]["reason"] == (
        "RETRYING: delivery 1 of 5 failed: unknown chain id 31337; configured: 99; "
        "it comes back after the visibility timeout"
    )
    assert done["error"] is None  # cleared once a look went through
