"""Prometheus instruments of one process, served at ``GET /metrics`` (API) or on the worker's
``--metrics-port``.

A process is what Prometheus scrapes, so the instruments are per process: module-level, on
one registry of their own (nothing a library registers elsewhere leaks into the scrape).
Labels come from small closed sets (statuses, error codes, outcomes) or are capped
(operation names), so a client cannot grow the series without bound. Updates on the hot path
use pre-bound children: a dict lookup and an increment, no label validation per request.
This module imports prometheus-client only, never the GraphQL stack: the worker uses it too.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

M = TypeVar("M", bound=MetricWrapperBase)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU, memory, open files, start time

# Named operations beyond this many distinct names, or longer than this, count as "other".
MAX_OPERATION_NAMES = 100
MAX_OPERATION_NAME_LENGTH = 64
ANONYMOUS = "anonymous"
OTHER = "other"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "walletql_http_requests",
    "HTTP requests by GraphQL operation name (or route) and outcome: ok, error (the answer "
    "carries GraphQL errors), 4xx, 5xx",
    ["operation", "outcome"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "walletql_http_request_duration_seconds",
    "Time from request to the end of the response, by operation",
    ["operation"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "walletql_graphql_errors",
    "GraphQL errors sent to clients, by extensions.code (HTTP and subscriptions)",
    ["code"],
    registry=REGISTRY,
)
WEBSOCKETS_OPEN = Gauge(
    "walletql_websockets_open", "Websocket connections open now", registry=REGISTRY
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "walletql_subscriptions_active",
    "Live event subscriptions (transactionStatus, myTransactions) running now",
    registry=REGISTRY,
)
EVENTS_DELIVERED = Counter(
    "walletql_events_delivered",
    "Transaction events sent to subscribers, by subscription field",
    ["subscription"],
    registry=REGISTRY,
)
EVENT_NOTIFICATIONS = Counter(
    "walletql_event_notifications",
    "Event notifications this process received from the database (LISTEN)",
    registry=REGISTRY,
)
QUEUE_MESSAGES = Counter(
    "walletql_queue_messages",
    "Queue messages handled by this worker, by outcome: processed (acked), failed (left for "
    "redelivery), dead_lettered",
    ["outcome"],
    registry=REGISTRY,
)
STATUS_CHANGES = Counter(
    "walletql_transaction_status_changes",
    "Committed transaction events written by this process, by the status they set",
    ["status"],
    registry=REGISTRY,
)
WORKER_LAG = Histogram(
    "walletql_worker_lag_seconds",
    "How late a transaction's look starts: processing time minus the time it was due",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
KDF_WAIT = Histogram(
    "walletql_kdf_wait_seconds",
    "Time a key derivation waited for a KDF slot",
    buckets=_LATENCY,
    registry=REGISTRY,
)
KDF_DURATION = Histogram(
    "walletql_kdf_duration_seconds",
    "Time of one key derivation (Argon2id, or the keystore's scrypt) in its thread",
    buckets=_LATENCY,
    registry=REGISTRY,
)
JWKS_FETCH_FAILURES = Counter(
    "walletql_jwks_fetch_failures",
    "JWKS fetches that failed (the last good key set stays in use)",
    registry=REGISTRY,
)

QUEUE_PROCESSED = QUEUE_MESSAGES.labels("processed")
QUEUE_FAILED = QUEUE_MESSAGES.labels("failed")
QUEUE_DEAD_LETTERED = QUEUE_MESSAGES.labels("dead_lettered")
TRANSACTION_STATUS_EVENTS = EVENTS_DELIVERED.labels("transactionStatus")
MY_TRANSACTIONS_EVENTS = EVENTS_DELIVERED.labels("myTransactions")


class _Children(Generic[M]):
    """Pre-bound children of a labelled metric, by label values (a lookup on the hot path)."""

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def get(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_requests = _Children(HTTP_REQUESTS)
_durations = _Children(HTTP_DURATION)
_errors = _Children(GRAPHQL_ERRORS)
_statuses = _Children(STATUS_CHANGES)
_operation_names: set[str] = set()
_names_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    """The label for a GraphQL operation: its name while fewer than MAX_OPERATION_NAMES are
    known, ``other`` past the cap (or for a very long name), ``anonymous`` without a name."""
    if not name:
        return ANONYMOUS
    if name in _operation_names:
        return name
    if len(name) > MAX_OPERATION_NAME_LENGTH:
        return OTHER
    with _names_lock:
        if len(_operation_names) >= MAX_OPERATION_NAMES:
            return OTHER
        _operation_names.add(name)
    return name


def observe_request(operation: str, status: int, graphql_errors: bool, seconds: float) -> None:
    if status >= 500:
        outcome = "5xx"
    elif status >= 400:
        outcome = "4xx"
    else:
        outcome = "error" if graphql_errors else "ok"
    _requests.get(operation, outcome).inc()
    _durations.get(operation).observe(seconds)


def count_error(code: str) -> None:
    _errors.get(code).inc()


def count_status_change(status: str) -> None:
    _statuses.get(status).inc()
