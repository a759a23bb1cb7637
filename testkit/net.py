"""Ports on 127.0.0.1 and waiting for a server to answer."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx


def free_port() -> int:
    """A port that was free a moment ago (the caller binds it; it may be taken meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(
    url: str, proc: asyncio.subprocess.Process | None = None, *, seconds: float = 30
) -> None:
    """Until ``url`` answers 200; fails at once when ``proc`` exits meanwhile."""
    async with httpx.AsyncClient() as client:
        for _ in range(int(seconds / 0.05)):
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"process exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")
