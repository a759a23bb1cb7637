"""Operations: /metrics after real traffic, /readyz through a database and listener outage,
JSON log lines with the request id, the operation and the duration."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.listener import APPLICATION_NAME
from testkit.env import PipelineSettings, make_settings
from testkit.graphql import error_codes
from testkit.net import free_port
from testkit.pipeline import new_wallet, submit
from testkit.server import LiveServer
from testkit.ws import GraphQLWS
from tests.jwks_support import Issuer
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.logs import log_handler

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
STATUS = """subscription($id: ID!) {
  transactionStatus(id: $id, afterSeq: 0) { seq status }
}"""


async def scrape(server: LiveServer) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_count_queries_errors_subscriptions_and_queue_messages(
    pipeline: PipelineSettings, signer: DevSigner
) -> None:
    settings = pipeline(None)  # the in-process EVM and worker
    async with LiveServer(create_app(settings, run_worker=True)) as server:
        token, _ = await new_wallet(server, signer, "alice", None)
        before = await scrape(server)
        assert (await server.graphql("query Me { me { sub } }", token=token))["data"] == {
            "me": {"sub": "alice"}
        }
        body = await server.graphql("query Me { me { sub } }", token="garbage")
        assert error_codes(body) == ["UNAUTHENTICATED"]
        await server.graphql("{ chains { chainId } }")
        queued = await submit(server, token)
        async with GraphQLWS(server.ws_url, token) as ws:
            await ws.subscribe("s", STATUS, {"id": queued["id"]})
            first = await ws.collect("s", count=1)
            during = await scrape(server)
            pushed = first + await ws.collect("s")
        after = await scrape(server)

    requests = "walletql_http_requests_total"
    assert delta(before, after, requests, operation="Me", outcome="ok") == 1
    assert delta(before, after, requests, operation="Me", outcome="error") == 1
    assert delta(before, after, requests, operation="anonymous", outcome="ok") >= 1
    assert delta(before, after, "walletql_graphql_errors_total", code="UNAUTHENTICATED") == 1
    assert delta(before, after, "walletql_http_request_duration_seconds_count", operation="Me") == 2
    # While the subscription ran: one more socket open, one more live subscription.
    assert delta(before, during, "walletql_websockets_open") == 1
    assert delta(before, during, "walletql_subscriptions_active") == 1
    statuses = [p["data"]["transactionStatus"]["status"] for p in pushed]
    assert statuses[-1] == "CONFIRMED"
    assert delta(
        before, after, "walletql_events_delivered_total", subscription="transactionStatus"
    ) == len(pushed)
    # The worker (in this process) handled the message, and the statuses were counted.
    assert delta(before, after, "walletql_queue_messages_total", outcome="processed") >= 1
    assert delta(before, after, "walletql_queue_messages_total", outcome="failed") == 0
    for status in statuses:
        assert delta(
            before, after, "walletql_transaction_status_changes_total", status=status
        ) == statuses.count(status)
    assert delta(before, after, "walletql_worker_lag_seconds_count") >= 1
    # submitTransaction unlocked the key once: one KDF run, and its wait for a slot.
    assert delta(before, after, "walletql_kdf_duration_seconds_count") == 1
    assert delta(before, after, "walletql_kdf_wait_seconds_count") == 1
    assert value(after, "process_resident_memory_bytes") > 0


async def scrape_until(server: LiveServer, done: Any) -> Samples:
    """Scrape until ``done(samples)``: the server updates gauges when it notices a close."""
    for _ in range(200):
        samples = await scrape(server)
        if done(samples):
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError("the metrics never got there")


async def test_socket_and_subscription_gauges_fall_back_when_the_client_leaves(
    server: LiveServer, signer: DevSigner
) -> None:
    token, _ = await new_wallet(server, signer, "bob", None)
    before = await scrape(server)
    async with GraphQLWS(server.ws_url, token) as ws:
        await ws.subscribe("m", "subscription { myTransactions { seq } }")
        during = await scrape_until(
            server, lambda s: delta(before, s, "walletql_subscriptions_active") == 1
        )
    assert delta(before, during, "walletql_websockets_open") == 1
    await scrape_until(
        server,
        lambda s: (
            delta(before, s, "walletql_websockets_open") == 0
            and delta(before, s, "walletql_subscriptions_active") == 0
        ),
    )


async def test_operation_names_are_capped(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import metrics

    monkeypatch.setattr(metrics, "_operation_names", set())
    monkeypatch.setattr(metrics, "MAX_OPERATION_NAMES", 2)
    for name in ("One", "X" * 65, "Two", "Three", "Four"):
        await server.graphql(f"query {name} {{ chains {{ chainId }} }}")
    samples = await scrape(server)
    assert value(samples, "walletql_http_requests_total", operation="Two", outcome="ok") >= 1
    assert value(samples, "walletql_http_requests_total", operation="Three", outcome="ok") == 0
    assert value(samples, "walletql_http_requests_total", operation="other", outcome="ok") >= 3
    assert value(samples, "walletql_http_requests_total", operation="X" * 65, outcome="ok") == 0


async def test_jwks_fetch_failures_are_counted(tmp_path: Path, database_url: str) -> None:
    provider = Issuer()
    provider.add_key("k1")
    provider.down = True
    async with LiveServer(provider.app()) as jwks:
        settings = make_settings(
            tmp_path,
            database_url,
            jwks_url=f"{jwks.url}/.well-known/jwks.json",
            jwt_issuer="https://auth.example",
            jwt_audience="walletql-app",
        )
        async with LiveServer(create_app(settings)) as server:
            before = await scrape(server)
            body = await server.graphql("{ me { id } }", token=provider.token("k1"))
            after = await scrape(server)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert delta(before, after, "walletql_jwks_fetch_failures_total") == 1


async def test_metrics_can_be_turned_off(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, metrics_enabled=False)
    async with LiveServer(create_app(settings)) as server, httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/metrics")).status_code == 404


# --- readiness ----------------------------------------------------------------------------


async def readyz(server: LiveServer) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{server.url}/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def until_ready(server: LiveServer, wanted: int) -> dict[str, Any]:
    for _ in range(600):
        status, body = await readyz(server)
        if status == wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never answered {wanted}: {body}")


@asynccontextmanager
async def connections_refused(pg_admin_url: str, database_url: str) -> AsyncIterator[Any]:
    """New connections to the test database are refused until the block ends; yields a
    function that terminates the database's backends (or those of one application)."""
    name = database_url.rpartition("/")[2]
    admin = await asyncpg.connect(pg_admin_url)

    async def terminate(application_name: str | None = None) -> int:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
            "AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)",
            name,
            application_name,
        )
        return len(rows)

    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        yield terminate
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_readyz_follows_the_listener_connection(
    server: LiveServer, pg_admin_url: str, database_url: str
) -> None:
    # The listener connects in the background after start-up: ready once it has.
    assert await until_ready(server, 200) == {"ready": True, "database": True, "listener": True}
    async with connections_refused(pg_admin_url, database_url) as terminate:
        assert await terminate(APPLICATION_NAME) == 1
        down = await until_ready(server, 503)
        # The pool's connections still answer: only this process's LISTEN is down.
        assert down == {"ready": False, "database": True, "listener": False}
    assert await until_ready(server, 200) == {"ready": True, "database": True, "listener": True}
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/healthz")).status_code == 200


async def test_readyz_follows_the_database(
    server: LiveServer, pg_admin_url: str, database_url: str
) -> None:
    assert (await readyz(server))[0] == 200
    async with connections_refused(pg_admin_url, database_url) as terminate:
        assert await terminate() >= 2  # the pool's connection and the listener's
        status, body = await readyz(server)
        assert (status, body["database"]) == (503, False)
        async with httpx.AsyncClient() as client:  # alive all the same: not restarted
            assert (await client.get(f"{server.url}/healthz")).status_code == 200
    assert await until_ready(server, 200) == {"ready": True, "database": True, "listener": True}


async def test_a_chain_that_does_not_answer_leaves_the_api_ready(
    tmp_path: Path, database_url: str
) -> None:
    down = {"chain_id": 5, "name": "down", "rpc_url": f"http://127.0.0.1:{free_port()}"}
    settings = make_settings(tmp_path, database_url, chains=[down], chain_timeout_seconds=1)
    async with LiveServer(create_app(settings)) as server:
        body = await server.graphql("{ balance { wei } }", token=DevSigner(tmp_path).mint("x"))
        assert error_codes(body) in (["CHAIN_UNAVAILABLE"], ["NOT_FOUND"])
        assert await readyz(server) == (200, {"ready": True, "database": True, "listener": True})


# --- JSON logs ----------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line, as WALLETQL_LOG_FORMAT=json writes it."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_json_access_lines_carry_request_id_operation_and_duration(
    server: LiveServer, signer: DevSigner, json_log: io.StringIO
) -> None:
    await server.graphql("query WhoAmI { me { id } }", token=signer.mint("carol"))
    await server.graphql("{ me { id } }", token="garbage")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "walletql.access"]
    named, anonymous = access[-2], access[-1]
    assert named["operation"] == "WhoAmI"
    assert (named["method"], named["path"], named["status"]) == ("POST", "/graphql", 200)
    assert isinstance(named["duration_ms"], float)
    assert len(named["request_id"]) == 16
    assert anonymous["operation"] == "anonymous"
    assert anonymous["request_id"] != named["request_id"]
    assert {"time", "level", "message"} <= named.keys()
