"""Checks run before a command starts: each failure is one line naming the setting, as a
``StartupError`` (walletql/startup.py).

Retries: a database that refuses connections (still starting, say) is tried again for
``DATABASE_RETRY_SECONDS``; wrong credentials and a missing database fail at once. A chain gets
one try bounded by ``WALLETQL_CHAIN_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from db.url import DatabaseUrl
from walletql.settings import Settings
from walletql.startup import StartupError

if TYPE_CHECKING:
    import asyncpg

DATABASE_RETRY_SECONDS = 5.0
_ATTEMPT_TIMEOUT = 3.0
T = TypeVar("T")


def redact(url: str) -> str:
    """An RPC URL without its password, path or query: providers put API keys in any."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}@" if parts.username else ""
    except ValueError:
        return "<unparsable URL>"
    scheme = parts.scheme.replace("+asyncpg", "")
    path = "" if parts.path in ("", "/") else "/…"
    return f"{scheme}://{user}{host}{path}"


async def check_database(settings: Settings, url: DatabaseUrl) -> None:
    """Connect once; retry only what may pass by itself (a server that is starting)."""
    connection = await connect_database(settings, url)
    await connection.close()


async def connect_database(settings: Settings, url: DatabaseUrl) -> asyncpg.Connection:
    """A connection, as ``check_database`` makes it: the caller closes it."""
    import asyncpg

    setting = "WALLETQL_DATABASE_URL" if settings.database is not None else "embedded"
    where = f"the database at {url.host}:{url.port}/{url.database} ({setting})"
    kwargs = {"timeout": _ATTEMPT_TIMEOUT, **url.asyncpg_kwargs()}
    deadline = time.monotonic() + DATABASE_RETRY_SECONDS
    while True:
        try:
            conn = await asyncpg.connect(**kwargs)
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
            raise StartupError(f"cannot log in to {where}: {e}") from None
        except asyncpg.InvalidCatalogNameError as exc:
            raise StartupError(f"cannot connect to {where}: {exc}") from None
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
            if isinstance(exc, socket.gaierror) or time.monotonic() >= deadline:
                tried = f", retried for {DATABASE_RETRY_SECONDS:g} s"
                tried = "" if isinstance(exc, socket.gaierror) else tried
                raise StartupError(f"cannot connect to {where}: {_os_cause(exc)}{tried}") from None
            await asyncio.sleep(0.5)
            continue
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StartupError(f"cannot connect to {where}: {type(exc).__name__}: {exc}") from None
        return conn


def _os_cause(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class ChainCheck:
    """Every JSON-RPC chain answers eth_chainId with its configured id.

    The question goes out when this is built, to each chain from a thread of its own with
    the standard library's http.client: the answers come while the rest of start-up runs,
    and aiohttp (about 0.1 s of imports with its TLS contexts) waits for the first chain
    call that needs it. ``verdict`` waits for them (``WALLETQL_CHAIN_TIMEOUT_SECONDS`` in
    all) and raises the first failure, in the order of ``WALLETQL_CHAINS``."""

    def __init__(self, settings: Settings) -> None:
        self._configs = [c for c in settings.chains if c.rpc_url != "embedded"]
        timeout = settings.chain_timeout_seconds
        self._deadline = time.monotonic() + timeout
        self._answers = [_in_daemon_thread(_chain_id_of, c.rpc_url, timeout) for c in self._configs]

    async def verdict(self) -> None:
        for config, answer in zip(self._configs, self._answers, strict=True):
            where = f"WALLETQL_CHAINS: chain {config.chain_id} ({config.name}) at "
            where += redact(config.rpc_url)
            left = max(0.0, self._deadline - time.monotonic())
            try:
                chain_id = await asyncio.wait_for(asyncio.wrap_future(answer), left)
            except Exception as exc:
                raise StartupError(f"{where}: {_chain_cause(exc)}") from None
            if chain_id != config.chain_id:
                raise StartupError(f"{where}: the node reports chain id {chain_id}")


class _NoAnswer(Exception):
    """The node's HTTP answer is not a JSON-RPC result (status, body or error)."""


def _chain_id_of(url: str, timeout: float) -> int:
    """eth_chainId over one HTTP(S) request (blocking: run in a thread)."""
    import base64
    import http.client
    import json
    from urllib.parse import unquote

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _NoAnswer("not an http(s) URL")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"content-type": "application/json", "accept": "application/json"}
    if parts.username is not None:  # user:password@host, as aiohttp sends it
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise _NoAnswer(f"HTTP {response.status}")
    from services.rpc import RpcError, answer_of  # the chain port's reading of an answer

    try:
        result = answer_of(json.loads(data))
    except (ValueError, AttributeError):
        result = None
    if isinstance(result, RpcError):
        raise _NoAnswer(f"eth_chainId failed: {result.message}")
    try:
        return int(result, 16)
    except (ValueError, TypeError):
        raise _NoAnswer("the answer to eth_chainId is not a JSON-RPC result") from None


def _in_daemon_thread(function: Callable[..., T], *args: Any) -> Future[T]:
    """``function(*args)`` in a daemon thread: unlike an executor's, a process that stops for
    another reason meanwhile does not wait for it to end."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="walletql-chain-check", daemon=True).start()
    return future


def _chain_cause(exc: BaseException) -> str:
    if isinstance(exc, _NoAnswer):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ssl.SSLError):
        return f"no answer (TLS: {exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"no answer ({_os_cause(exc)})"
    return f"no answer ({type(exc).__name__})"


async def check_embedded_history(settings: Settings, url: DatabaseUrl) -> None:
    """The in-process chain's journal holds the newest transaction the database has as
    mined. The journal is append-only and written before a send returns, so if it holds that
    one it holds every earlier one; if not, it was deleted or belongs to another database, and
    every wallet would show a history that is not on the chain. (The journal is read, not
    replayed: the runtime replays it once when it builds the chain.)"""
    import asyncpg

    from services.chains import ChainConfig
    from services.devchain import ChainJournal

    configs = [ChainConfig(**c.model_dump()) for c in settings.chains if c.rpc_url == "embedded"]
    if not configs:
        return
    conn = await asyncpg.connect(**url.asyncpg_kwargs())
    try:
        newest = {
            config.chain_id: await conn.fetchval(
                "SELECT hash FROM transactions WHERE chain_id = $1 AND block_number IS NOT NULL "
                "ORDER BY block_number DESC LIMIT 1",
                config.chain_id,
            )
            for config in configs
        }
    finally:
        await conn.close()
    for config in configs:
        tx_hash = newest[config.chain_id]
        journal = settings.data_dir / f"chain-{config.chain_id}.journal"
        if tx_hash and tx_hash.lower() not in ChainJournal(journal).hashes():
            raise StartupError(
                f"WALLETQL_DATA_DIR: the embedded chain replayed from {journal} lacks transaction "
                f"{tx_hash}, which the database has as mined (the journal was deleted, or the "
                f"database belongs to another data directory); restore the journal, or delete "
                f"{settings.data_dir} to start afresh"
            )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"WALLETQL_PORT: {host}:{port} is already in use (another walletql serve?)"
            ) from None
        raise StartupError(
            f"WALLETQL_HOST: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock
