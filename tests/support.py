"""Test helpers: a live uvicorn server and a small GraphQL-over-HTTP client."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from walletql.settings import Settings


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: nothing read from the environment or a .env file."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "log_level": "DEBUG",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class LiveServer:
    """An ASGI app under a real uvicorn, bound to 127.0.0.1 on a free port."""

    def __init__(self, app: ASGIApp, *, send_buffer: int | None = None) -> None:
        self.app = app
        self._sock = socket.socket()
        if send_buffer is not None:
            # Accepted sockets inherit it; a fixed size turns off the kernel's autotuning,
            # so backpressure from a client that does not read shows at test-sized volumes.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.graphql_url = f"{self.url}/graphql"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        config = uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False, ws="websockets-sansio"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()

    async def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one operation; return the decoded JSON body."""
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(timeout=120) as client:
            # json.dumps escapes to ASCII: a lone surrogate is sent as \ud800, like a browser.
            body = json.dumps({"query": query, "variables": variables or {}})
            sent.setdefault("content-type", "application/json")
            response = await client.post(self.graphql_url, content=body, headers=sent)
        assert response.headers["content-type"].startswith("application/json"), response.text
        body: dict[str, Any] = response.json()
        return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    errors = body.get("errors") or []
    assert len(errors) == 1, body
    error: dict[str, Any] = errors[0]
    return error


async def seed_wallet(
    database_url: str, data_dir: Path, sub: str, private_key: bytes, password: str
) -> str:
    """Insert a user whose wallet holds a known key (for known-answer vectors); its address."""
    import uuid

    from eth_account import Account
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.engine import create_session_factory, unit_of_work
    from db.models import User, Wallet
    from services.keys import KdfParams, KeyVault
    from walletql.devauth import load_or_create_pepper

    address: str = Account.from_key(private_key).address
    user_id = uuid.uuid4()
    vault = KeyVault(load_or_create_pepper(data_dir), KdfParams())
    sealed = await vault.seal(private_key, password, user_id=user_id, address=address)
    vault.close()
    engine = create_async_engine(database_url)
    async with unit_of_work(create_session_factory(engine)) as uow:
        uow.session.add(User(id=user_id, sub=sub))
        await uow.session.flush()
        uow.session.add(
            Wallet(
                user_id=user_id, address=address, ciphertext=sealed.ciphertext,
                nonce=sealed.nonce, salt=sealed.salt, kdf=sealed.kdf.name,
                kdf_memory_kib=sealed.kdf.memory_kib, kdf_iterations=sealed.kdf.iterations,
                kdf_lanes=sealed.kdf.lanes, version=sealed.version,
            )
        )  # fmt: skip
    await engine.dispose()
    return address
