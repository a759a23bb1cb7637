"""`walletql serve` as its own process, as `make run` starts it (embedded chain, worker inside)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import httpx


class ServeProcess:
    """``walletql serve`` on ``port`` with its data in ``data_dir``; ``kill()`` is a crash."""

    def __init__(self, data_dir: Path, database_url: str, port: int, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")},
            "WALLETQL_DATA_DIR": str(data_dir),
            "WALLETQL_PORT": str(port),
            "WALLETQL_DATABASE_URL": database_url,
            **env,
        }
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "walletql.cli", "serve", env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(600):
                if self._proc.returncode is not None:
                    raise RuntimeError("walletql serve exited during start-up")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("walletql serve did not come up in 60 s")

    async def kill(self) -> None:
        """SIGKILL: no shutdown, sockets drop as in a crash."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self._proc.wait(), timeout=30)

    async def __aenter__(self) -> ServeProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            await self.kill()
