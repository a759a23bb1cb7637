"""A real Ethereum JSON-RPC node: anvil (an OpenZeppelin ERC-20 for it: testkit.contracts).

Both come from npm (tests/node/package.json, installed with `npm ci` in tests/node):

- `@foundry-rs/anvil` ships the anvil binary in a per-platform package
  (`@foundry-rs/anvil-<os>-<arch>/bin/anvil`); its postinstall script is only a fallback that
  fetches that same package when npm skipped the optional dependency, so it need not run.
- `@openzeppelin/contracts` 4.9.6 ships compiled artifacts (`build/contracts/<Name>.json`, with
  `abi` and `bytecode`), so no Solidity compiler and no hand-written bytecode are needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from testkit import ROOT
from testkit.net import free_port

NODE_DIR = ROOT / "tests" / "node"
NODE_MODULES = NODE_DIR / "node_modules"

_OS_NAMES = {"linux": "linux", "darwin": "darwin"}
_ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def _anvil_package() -> str | None:
    """The npm package that holds anvil for this machine (see @foundry-rs/anvil's
    optionalDependencies: linux-amd64, linux-arm64, darwin-amd64, darwin-arm64, win32-amd64)."""
    os_name = _OS_NAMES.get(platform.system().lower())
    arch = _ARCH_NAMES.get(platform.machine().lower())
    if os_name is None or arch is None:
        return None
    return f"@foundry-rs/anvil-{os_name}-{arch}"


_ANVIL_PACKAGE = _anvil_package()
ANVIL_BIN: Path = NODE_MODULES / (_ANVIL_PACKAGE or "@foundry-rs/anvil-linux-amd64") / "bin/anvil"

DEFAULT_CHAIN_ID = 31337
INSTALL_HINT = "run `npm ci` in tests/node (needs npm)"


def anvil_available() -> str | None:
    """None when the anvil binary is installed and executable, else why it is not."""
    if _ANVIL_PACKAGE is None:
        return f"anvil has no npm package for {platform.system()}/{platform.machine()}"
    if not ANVIL_BIN.is_file():
        return f"anvil not installed at {ANVIL_BIN}: {INSTALL_HINT}"
    if not os.access(ANVIL_BIN, os.X_OK):
        return f"anvil at {ANVIL_BIN} is not executable: {INSTALL_HINT}"
    return None


class AnvilError(RuntimeError):
    """anvil did not start, or did not answer as expected."""


class Anvil:
    """An anvil node bound to 127.0.0.1, started and stopped by this object (by its own PID).

    Use as `with Anvil() as node:` (or `async with`), or call start()/stop() yourself.
    `.accounts` and `.private_keys` are the funded dev accounts, as anvil reports them
    through `--config-out` (by default derived from the mnemonic "test test ... junk").

    With `state_path`, anvil runs with `--state PATH`: it loads the chain from PATH when the
    file exists and dumps it there when it stops gracefully (SIGTERM), so restart() keeps
    blocks, balances and contracts. Without it, every start is a fresh chain.
    """

    def __init__(
        self,
        chain_id: int = DEFAULT_CHAIN_ID,
        *,
        port: int | None = None,
        state_path: Path | str | None = None,
        block_time: float | None = None,
        no_mining: bool = False,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.chain_id = chain_id
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.state_path = Path(state_path) if state_path is not None else None
        self.block_time = block_time
        self.no_mining = no_mining
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.accounts: list[ChecksumAddress] = []
        self.private_keys: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, config_out: Path) -> list[str]:
        args = [
            str(ANVIL_BIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--silent",
            "--config-out",
            str(config_out),
        ]
        if self.state_path is not None:
            args += ["--state", str(self.state_path)]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.no_mining:
            args.append("--no-mining")
        args += self.extra_args
        return args

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start anvil and return once it answers eth_chainId with the expected chain id."""
        if self.running:
            raise AnvilError(f"anvil already running (pid {self.pid})")
        reason = anvil_available()
        if reason is not None:
            raise AnvilError(reason)
        # A port picked free can be taken before anvil binds it: pick again then, unless the
        # caller fixed the port or this node ran before (a restart keeps its URL valid).
        attempts = 1 if self._fixed_port or self.accounts else 3
        for attempt in range(attempts):
            try:
                self._start_once()
                return
            except AnvilError:
                if attempt + 1 == attempts:
                    raise
                self.port = free_port()

    def _start_once(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="anvil-"))
        try:
            config_out = workdir / "config.json"
            # Kept open as long as the process runs (its error output); stop() closes it.
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
            self._proc = subprocess.Popen(
                self.command(config_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                cwd=workdir,
            )
            try:
                self._wait_ready(config_out)
            except BaseException:
                self.stop()
                raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _wait_ready(self, config_out: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        last_error = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise AnvilError(
                        f"anvil exited with {self._proc.returncode} during start-up on port "
                        f"{self.port}: {self._stderr_text()}"
                    )
                if time.monotonic() > deadline:
                    raise AnvilError(
                        f"anvil did not answer eth_chainId on {self.url} within "
                        f"{self.startup_timeout}s ({last_error}): {self._stderr_text()}"
                    )
                try:
                    response = client.post(self.url, json=payload)
                    answer = int(response.json()["result"], 16)
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    last_error = repr(exc)
                else:
                    if answer != self.chain_id:
                        raise AnvilError(f"anvil answered chain id {answer}, not {self.chain_id}")
                    if config_out.is_file():
                        try:
                            config = json.loads(config_out.read_text())
                        except ValueError as exc:  # still being written
                            last_error = repr(exc)
                        else:
                            self._read_config(config)
                            # The answer came from our process (it wrote our --config-out), unless
                            # that died on a port another node holds: then it has exited by now.
                            if self._proc.poll() is None:
                                return
                time.sleep(0.05)

    def _read_config(self, config: dict[str, Any]) -> None:
        self.accounts = [to_checksum_address(a) for a in config["available_accounts"]]
        self.private_keys = [str(k) for k in config["private_keys"]]
        if not self.accounts or len(self.accounts) != len(self.private_keys):
            raise AnvilError(f"unexpected anvil --config-out: {config!r}")

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def stop(self, *, force: bool = False, timeout: float = 15.0) -> None:
        """Stop anvil by its own PID and wait for it.

        SIGTERM by default, which lets anvil dump its state to `state_path`; `force=True`
        sends SIGKILL instead (a crash: nothing is dumped). Idempotent.
        """
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def restart(self, *, force: bool = False) -> None:
        """Stop, then start again on the same port (and the same state file, if any)."""
        self.stop(force=force)
        self.start()

    def __enter__(self) -> Anvil:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Anvil:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)
