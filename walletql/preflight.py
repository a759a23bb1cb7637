"""Checks run before a command starts: each failure is one line naming the setting, as a
``StartupError`` (walletql/startup.py).

Retries: a database that refuses connections (still starting, say) is tried again for
``DATABASE_RETRY_SECONDS``; wrong credentials and a missing database fail at once. A chain gets
one try bounded by ``WALLETQL_CHAIN_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from urllib.parse import urlsplit

from db.url import DatabaseUrl
from walletql.settings import Settings
from walletql.startup import StartupError

DATABASE_RETRY_SECONDS = 5.0
_ATTEMPT_TIMEOUT = 3.0


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
        await conn.close()
        return


def _os_cause(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def check_chains(settings: Settings) -> None:
    """Every JSON-RPC chain answers eth_chainId with its configured id."""
    from services.chains import ChainConfig, Chains
    from services.errors import ChainUnavailable

    configs = [ChainConfig(**c.model_dump()) for c in settings.chains if c.rpc_url != "embedded"]
    if not configs:
        return
    chains = Chains(configs, settings.chain_timeout_seconds)
    # The chain port logs each failure; here the one line below says it all.
    chain_log = logging.getLogger("services.chains")
    level, chain_log.disabled = chain_log.disabled, True
    try:
        for config in configs:
            where = f"WALLETQL_CHAINS: chain {config.chain_id} ({config.name}) at "
            where += redact(config.rpc_url)
            try:
                await chains.get(config.chain_id).block_number()
            except ChainUnavailable as exc:
                raise StartupError(f"{where}: {_chain_cause(exc)}") from None
            except Exception as exc:
                raise StartupError(f"{where}: {type(exc).__name__}: {exc}") from None
    finally:
        chain_log.disabled = level
        await chains.close()


def _chain_cause(exc: BaseException) -> str:
    if exc.__cause__ is None:  # it answered, with another chain id
        return str(exc)
    # Down the chain of causes (HTTP client, its transport) to the operating system's word.
    cause: BaseException | None = exc.__cause__
    while cause is not None and not (isinstance(cause, OSError) and cause.errno):
        if isinstance(cause, TimeoutError) or "timeout" in type(cause).__name__.lower():
            return "no answer in time"
        cause = cause.__cause__ or cause.__context__
    return f"no answer ({_os_cause(cause or exc.__cause__)})"


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
