"""Production mode end to end, as an operator runs it: `walletql migrate`, then the API
(`serve --no-worker`) and the worker (`walletql worker`) as separate processes with
WALLETQL_ENV=production; an external JWKS with Dynamic-shaped tokens; SQS on moto's server;
anvil; a `postgresql://` URL. The worker gets the database, queue and chain settings only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import clean_env
from testkit.net import free_port, wait_http
from testkit.pipeline import PASSWORD, RECIPIENT, fund, mine
from testkit.process import ServerProcess, run_walletql
from testkit.server import LiveServer
from testkit.sqs import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoSqsServer, create_queues
from testkit.ws import GraphQLWS
from tests.jwks_support import AUDIENCE, ISSUER, Issuer

CREATE = """mutation CreateUser($p: String!) {
  createUser(input: {password: $p}) { sub wallet { address } }
}"""
SUBMIT = """mutation Submit($i: SubmitTransactionInput!) {
  submitTransaction(input: $i) { id status }
}"""
STATUS = """subscription Status($id: ID!) {
  transactionStatus(id: $id, afterSeq: 0) { seq status }
}"""


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def graphql(base: str, query: str, variables: dict[str, Any], token: str) -> Any:
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.post(
            f"{base}/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
    return response.json()


async def scrape(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    return response.text


def production_env(
    url: str, node: Anvil, moto: MotoSqsServer, queue_url: str, dlq_url: str, data_dir: Path
) -> dict[str, str]:
    """What the worker gets, and all it gets: database, queue and chain settings. No pepper,
    no JWKS, no JWT settings. The API gets these plus its own."""
    return clean_env(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        WALLETQL_ENV="production",
        WALLETQL_HOST="127.0.0.1",
        WALLETQL_DATA_DIR=str(data_dir),
        WALLETQL_DATABASE_URL=url,
        WALLETQL_QUEUE_BACKEND="sqs",
        WALLETQL_SQS_QUEUE_URL=queue_url,
        WALLETQL_SQS_DEAD_LETTER_URL=dlq_url,
        WALLETQL_SQS_ENDPOINT_URL=moto.endpoint_url,
        WALLETQL_SQS_REGION=REGION,
        WALLETQL_QUEUE_WAIT_SECONDS="0.5",
        WALLETQL_WORKER_CHECK_INTERVAL_SECONDS="0.2",
        WALLETQL_CHAINS=json.dumps(
            [{"chain_id": node.chain_id, "name": "anvil", "rpc_url": node.url, "confirmations": 1}]
        ),
        WALLETQL_LOG_FORMAT="json",
    )


async def test_production_api_and_worker_processes_confirm_a_pushed_transaction(
    tmp_path: Path,
    database_url: str,
    manual_anvil: tuple[Anvil, AsyncWeb3[Any]],
    moto_sqs: MotoSqsServer,
) -> None:
    node, w3 = manual_anvil
    queues = await create_queues(moto_sqs.endpoint_url)
    provider = Issuer()
    provider.add_key("dyn-1")
    # The form hosted providers hand out.
    url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    worker_env = production_env(
        url, node, moto_sqs, queues.standard_url, queues.standard_dlq_url, tmp_path / "unused"
    )
    metrics_port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    async with LiveServer(provider.app()) as jwks:
        api_env = {
            **worker_env,
            "WALLETQL_PEPPER": "p" * 40,
            "WALLETQL_JWKS_URL": f"{jwks.url}/.well-known/jwks.json",
            "WALLETQL_JWT_ISSUER": ISSUER,
            "WALLETQL_JWT_AUDIENCE": AUDIENCE,
            "WALLETQL_JWT_REQUIRED_SCOPE": "user:basic",
        }
        code, _, err = await run_walletql("migrate", env=worker_env)
        assert code == 0, err
        with api_log.open("wb") as api_out, worker_log.open("wb") as worker_out:
            async with (
                ServerProcess(api_env, ("serve", "--no-worker"), stderr=api_out) as api,
                ServerProcess(
                    worker_env, ("worker", "--metrics-port", str(metrics_port)),
                    stderr=worker_out,
                ) as worker,
            ):  # fmt: skip
                await wait_http(f"{api.url}/readyz", api.proc)
                await production_surface_is_closed(api.url)

                token = provider.token("dyn-1", sub="dynamic-user-1")
                created = await graphql(api.url, CREATE, {"p": PASSWORD}, token)
                assert created["data"]["createUser"]["sub"] == "dynamic-user-1", created
                await fund(w3, created["data"]["createUser"]["wallet"]["address"], 10**19)
                submit = {"i": {"to": RECIPIENT, "value": "1000", "password": PASSWORD}}
                submitted = await graphql(api.url, SUBMIT, submit, token)
                queued = submitted["data"]["submitTransaction"]
                assert queued["status"] == "QUEUED", submitted

                async with GraphQLWS(api.ws_url, token) as ws:
                    await ws.subscribe("s", STATUS, {"id": queued["id"]})
                    # QUEUED from the log, then SUBMITTED once the worker broadcast it.
                    got = await ws.collect("s", count=2, timeout=60)
                    await mine(w3)  # only now can it be mined: the rest is pushed
                    got += await ws.collect("s", timeout=60)
                statuses = [p["data"]["transactionStatus"]["status"] for p in got]
                assert statuses == ["QUEUED", "SUBMITTED", "MINED", "CONFIRMED"]

                await wait_http(f"http://127.0.0.1:{metrics_port}/metrics", worker.proc)
                worker_metrics = await scrape(f"http://127.0.0.1:{metrics_port}/metrics")
                api_metrics = await scrape(f"{api.url}/metrics")

    processed = counter(worker_metrics, "walletql_queue_messages_total", outcome="processed")
    assert processed >= 2  # the broadcast, and the look that found it mined
    confirmed = {"status": "CONFIRMED"}
    assert counter(worker_metrics, "walletql_transaction_status_changes_total", **confirmed) == 1
    assert counter(api_metrics, "walletql_transaction_status_changes_total", status="QUEUED") == 1
    submits = {"operation": "Submit", "outcome": "ok"}
    assert counter(api_metrics, "walletql_http_requests_total", **submits) == 1
    delivered = {"subscription": "transactionStatus"}
    assert counter(api_metrics, "walletql_events_delivered_total", **delivered) == 4
    # Both processes logged JSON only, one object per line.
    api_lines = [json.loads(line) for line in api_log.read_text().splitlines()]
    worker_lines = [json.loads(line) for line in worker_log.read_text().splitlines()]
    assert any(line["message"].startswith("worker started") for line in worker_lines)
    assert {"CreateUser", "Submit"} <= {line.get("operation") for line in api_lines}
    assert PASSWORD not in api_log.read_text()
    assert "p" * 40 not in api_log.read_text()


async def production_surface_is_closed(base: str) -> None:
    """No GraphiQL, no introspection, no dev routes, no GraphiQL assets."""
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404
        for path in ("/.well-known/jwks.json", "/static/graphiql/graphiql.min.js"):
            assert (await client.get(f"{base}{path}")).status_code == 404, path
        assert (await client.post(f"{base}/dev/faucet", json={})).status_code == 404
        introspection = await client.post(
            f"{base}/graphql", json={"query": "{ __schema { types { name } } }"}
        )
        errors = introspection.json()["errors"]
        assert "introspection" in errors[0]["message"].lower()
        assert "data" not in introspection.json() or not introspection.json()["data"]
