"""The embedded EVM (py-evm through web3's eth-tester provider) as a JSON-RPC transport.

Part of the ``embedded`` extra: a production install has neither web3's tester nor py-evm,
and nothing imports this module unless a chain's ``rpc_url`` is ``embedded``.

py-evm is pure Python: a gas estimate alone runs a whole execution (about 2 ms, a binary
search of them for a contract call). In the API's process it would hold the interpreter
lock against the event loop, and every query would wait behind the chain. So the EVM runs
in a child process of its own, as a node would, and this module is both ends of the pipe:

- ``EmbeddedTransport`` (the API or worker process) starts ``python -m
  services.embedded_evm`` and sends it batches of calls, one JSON line each, from one
  thread (the chain's requests stay in order), reading one JSON line of answers back;
- ``main`` (the child) builds the EVM, replays the journal (services/devchain.py), says
  it is ready, and answers until its input closes: when the parent closes it, exits or is
  killed, the child ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from services.rpc import RpcError, TransportFailed

if TYPE_CHECKING:
    from services.devchain import ChainJournal

EXTRA_HINT = "the in-process EVM needs the embedded extra: pip install 'walletql[embedded]'"
READY = b'{"ready": true}\n'
START_SECONDS = 120.0  # imports and the journal's replay (a few ms per transaction)
STOP_SECONDS = 10.0  # for the call in progress, before the child is killed

log = logging.getLogger(__name__)


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("web3", "eth_tester"))


class EmbeddedTransport:
    """The embedded EVM's child process, spoken to as a JSON-RPC node (``request`` and
    ``batch``, answers in JSON-RPC shapes, a refused call raised as ``RpcError``)."""

    def __init__(
        self, journal: ChainJournal | None = None, *, stop_seconds: float = STOP_SECONDS
    ) -> None:
        """With a journal, the child mines its transactions again first, and appends every
        transaction accepted later to it before answering the send."""
        if not available():
            raise RuntimeError(EXTRA_HINT)
        self._stop_seconds = stop_seconds
        level = str(logging.getLogger().getEffectiveLevel())
        journal_arg = str(journal.path.resolve()) if journal else "-"
        # -P: the working directory is not put on the child's path (a ``services`` folder
        # there would hide ours). A session of its own: the terminal's Ctrl-C and a signal to
        # the server's process group are the server's to handle; it closes our input.
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-P",
                "-m",
                "services.embedded_evm",
                journal_arg,
                "--log-level",
                level,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,
        )
        # One thread: calls reach the chain in the order they were made. Its first job waits
        # for the child's start (imports, the journal's replay); calls queue behind it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evm")
        self._ready: Future[None] = self._thread.submit(self._await_ready)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _await_ready(self) -> None:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if line != READY:
            self._process.kill()
            said = f", after printing {line[:80]!r}" if line else ""
            message = (
                f"the embedded chain's process ended while starting (exit "
                f"{self._process.wait()}{said}): its log line above says why"
            )
            log.error("%s", message)
            raise TransportFailed(message)

    def _exchange(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Each call's result or RpcError, in order (in the thread)."""
        self._ready.result()
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(json.dumps(calls).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: the pipe was closed
            raise TransportFailed("the embedded chain's process has ended") from exc
        line = stdout.readline()
        if not line:
            raise TransportFailed("the embedded chain's process has ended")
        return [
            RpcError(*answer["error"]) if "error" in answer else answer["result"]
            for answer in json.loads(line)
        ]

    async def started(self) -> None:
        """Returns once the child has replayed its journal and answers (TimeoutError after
        START_SECONDS: a child that hangs while starting)."""
        if self._ready.done():
            self._ready.result()  # a child that failed to start fails every call
        else:
            async with asyncio.timeout(START_SECONDS):
                await asyncio.shield(asyncio.wrap_future(self._ready))

    async def request(self, method: str, params: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        [answer] = await loop.run_in_executor(self._thread, self._exchange, [(method, params)])
        if isinstance(answer, RpcError):
            raise answer
        return answer

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Each call's result or RpcError, in order, in one trip to the child."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._exchange, calls)

    async def close(self) -> None:
        """Close the child's input (it ends after the call it is answering), wait for it."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        # Calls not begun are dropped; the one in progress gets stop_seconds to finish (a
        # stuck one is ended by killing the child, which ends the thread's read too).
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):  # the child is gone already
                self._process.stdin.close()
        try:
            self._process.wait(self._stop_seconds)
        except subprocess.TimeoutExpired:
            log.warning("the embedded chain's process did not stop; killing it")
            self._process.kill()
            self._process.wait()
        self._thread.shutdown(wait=True)
        if self._process.stdout is not None:
            self._process.stdout.close()


def _child_env() -> dict[str, str]:
    """The server's environment; with our packages' folder on PYTHONPATH when they are not
    installed where the child finds them anyway (a wheel's site-packages must not come
    before the standard library)."""
    import site

    root = str(Path(__file__).resolve().parent.parent)
    if root in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        return dict(os.environ)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


# -- the child ---------------------------------------------------------------------------------


class _Evm:
    """eth-tester behind its provider's JSON-RPC middleware (JSON-RPC names and shapes in
    and out); eth-tester raises where a node would answer with an error, so those become
    error answers here."""

    def __init__(self, journal: ChainJournal | None) -> None:
        from web3 import Web3
        from web3.providers.eth_tester import EthereumTesterProvider

        provider = EthereumTesterProvider()
        self._journal = journal
        if journal is not None:
            from services.devchain import replay

            replay(provider.ethereum_tester, journal)
        self._w3 = Web3(provider)
        # Requests arrive as JSON-RPC and leave as JSON-RPC: web3's client-side middleware
        # (ENS names, AttributeDict results, a chain-id check that asks the chain for its id
        # on every estimate) has nothing to do here and cost a third of an estimate's time.
        # The provider's own middleware, which speaks JSON-RPC to eth-tester, stays.
        self._w3.middleware_onion.clear()
        self._send_request = provider.request_func(self._w3, self._w3.middleware_onion)

    def _send(self, method: str, params: list[Any]) -> Any:
        response = self._send_request(method, params)
        accepted = method == "eth_sendRawTransaction" and "error" not in response
        if accepted and self._journal is not None:
            # Accepted (and mined): durable before the caller hears of it.
            self._journal.append(bytes.fromhex(str(params[0])[2:]))
        return response

    def answer(self, method: str, params: list[Any]) -> dict[str, Any]:
        """``{"result": ...}``, or ``{"error": [code, message]}`` as a node would answer."""
        from services.devchain import refusal_message

        try:
            response = self._send(method, params)
        except Exception as exc:
            message = refusal_message(str(exc.args[0] if exc.args else exc))
            return {"error": [3 if "revert" in message.lower() else -32000, message]}
        if "error" in response:
            error = response["error"]
            message = refusal_message(str(error.get("message", "")))
            return {"error": [int(error.get("code", -32000)), message]}
        return {"result": response.get("result")}


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):  # HexBytes among them
        return "0x" + value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _encoded(answers: list[dict[str, Any]]) -> bytes:
    try:
        return json.dumps(answers, default=_json_value).encode()
    except (TypeError, ValueError) as exc:  # the caller hears of it; the chain stays up
        refused = {"error": [-32603, f"the embedded chain cannot encode its answer: {exc}"]}
        return json.dumps([refused] * len(answers)).encode()


def serve(journal: ChainJournal | None, calls_in: BinaryIO, answers_out: BinaryIO) -> int:
    try:
        evm = _Evm(journal)
    except Exception as exc:  # one line, not a traceback; the server says the rest
        log.error("the embedded chain cannot start: %s: %s", type(exc).__name__, exc)
        return 1
    answers_out.write(READY)
    answers_out.flush()
    for line in calls_in:
        answers = [evm.answer(method, params) for method, params in json.loads(line)]
        answers_out.write(_encoded(answers) + b"\n")
        answers_out.flush()
    return 0


def main(argv: list[str]) -> int:
    """``python -m services.embedded_evm JOURNAL|- --log-level LEVEL``: the child."""
    # Ctrl-C and hang-up are the server's to handle (we run in a session of our own; this
    # covers a child started otherwise): it closes our input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    level = int(argv[argv.index("--log-level") + 1]) if "--log-level" in argv else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("web3").setLevel(logging.WARNING)
    from services.devchain import ChainJournal

    journal = ChainJournal(Path(argv[0])) if argv and argv[0] != "-" else None
    # The answers get stdout to themselves: anything else printed goes to stderr.
    with os.fdopen(os.dup(1), "wb") as answers_out:
        os.dup2(2, 1)
        return serve(journal, sys.stdin.buffer, answers_out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
