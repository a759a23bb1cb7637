"""The embedded chain runs py-evm in a child process of its own (services/embedded_evm.py):
it answers as a node does, journals what it accepts, and never outlives its parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.chains import RESTART_FIRST_SECONDS, Chain, ChainConfig
from services.devchain import FUNDER, ChainJournal, funding_transaction
from services.embedded_evm import EmbeddedTransport
from services.errors import ChainUnavailable
from services.rpc import RpcError, TransportFailed
from services.rpc_values import quantity
from testkit import ROOT

RECIPIENT = "0x000000000000000000000000000000000000dEaD"


def gone(pid: int, within: float) -> bool:
    """Has process ``pid`` (a child of ours or not) ended within ``within`` seconds?"""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap it if it is our own child
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


async def test_answers_in_json_rpc_shapes_and_refusals_as_rpc_errors() -> None:
    transport = EmbeddedTransport()
    try:
        await transport.started()
        balance = await transport.request("eth_getBalance", [FUNDER, "latest"])
        estimate = {"from": FUNDER, "to": RECIPIENT, "value": "0x1", "data": "0x"}
        gas, block, refused = await transport.batch(
            [
                ("eth_estimateGas", [estimate]),
                ("eth_getBlockByNumber", ["latest", False]),
                ("eth_sendRawTransaction", ["0x00"]),
            ]
        )
        with pytest.raises(RpcError):
            await transport.request("eth_sendRawTransaction", ["0x00"])
    finally:
        await transport.close()
    assert balance > 0
    assert gas == 21_000
    assert isinstance(block, dict)
    assert block["number"] == 0
    assert str(block["hash"]).startswith("0x")  # bytes travel as 0x-hex
    assert isinstance(refused, RpcError)
    assert gone(transport.pid, within=10)


async def test_accepted_transactions_are_journaled_and_replayed_by_the_next_child(
    tmp_path: Path,
) -> None:
    journal = ChainJournal(tmp_path / "chain.journal")
    first = EmbeddedTransport(journal)
    try:
        chain_id = quantity(await first.request("eth_chainId", []))
        raw = funding_transaction(chain_id, 0, 10**9, RECIPIENT, 12345)
        tx_hash = await first.request("eth_sendRawTransaction", ["0x" + raw.hex()])
    finally:
        await first.close()
    assert journal.load() == [raw]

    second = EmbeddedTransport(journal)
    try:
        receipt = await second.request("eth_getTransactionReceipt", [tx_hash])
        balance = await second.request("eth_getBalance", [RECIPIENT, "latest"])
    finally:
        await second.close()
    assert receipt is not None
    assert receipt["status"] == 1
    assert balance == 12345


async def test_a_child_that_died_makes_the_chain_unavailable_then_starts_again() -> None:
    config = ChainConfig(
        chain_id=131277322940537, name="embedded", rpc_url="embedded",
        confirmations=1, deadline_seconds=300, bump_interval_seconds=30,
    )  # fmt: skip
    chain = Chain(config, timeout=5)
    try:
        assert (await chain.latest_block()).number == 0
        transport = chain._transport
        assert isinstance(transport, EmbeddedTransport)
        os.kill(transport.pid, signal.SIGKILL)  # the child we started
        assert gone(transport.pid, within=10)
        with pytest.raises(ChainUnavailable):
            await chain.latest_block()
        with pytest.raises(ChainUnavailable):  # not started again before the first wait
            await chain.latest_block()
        await asyncio.sleep(RESTART_FIRST_SECONDS + 0.2)
        assert (await chain.latest_block()).number == 0  # a new child answers
        assert chain._transport is not transport
    finally:
        await chain.close()


def test_the_child_ends_when_its_parent_is_killed() -> None:
    """kill -9 of the API leaves no EVM behind: the child's input closes and it exits."""
    code = (
        "import asyncio, sys\n"
        "from services.embedded_evm import EmbeddedTransport\n"
        "t = EmbeddedTransport()\n"
        "asyncio.run(t.started())\n"
        "print(t.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.kill()
        parent.wait()
    assert gone(child, within=10)


async def test_ctrl_c_in_the_terminal_is_the_parents_to_handle() -> None:
    """SIGINT reaches the whole foreground group; the child ignores it and keeps answering
    until its parent closes it."""
    transport = EmbeddedTransport()
    try:
        await transport.started()
        os.kill(transport.pid, signal.SIGINT)
        await asyncio.sleep(0.2)
        assert int(await transport.request("eth_blockNumber", []) or 0) == 0
    finally:
        await transport.close()


async def test_close_ends_a_child_stuck_in_a_call() -> None:
    """A call that never finishes (a stopped child here; a looping contract call in py-evm
    in life) does not hold the server's shutdown: the child is killed after stop_seconds."""
    transport = EmbeddedTransport(stop_seconds=0.5)
    await transport.started()
    os.kill(transport.pid, signal.SIGSTOP)  # the child we started
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await transport.request("eth_blockNumber", [])
    await asyncio.wait_for(transport.close(), 30)
    assert gone(transport.pid, within=1)


async def test_a_child_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    journal = ChainJournal(tmp_path / "chain.journal")
    journal.path.write_text("0xzz\n")  # not hex: the replay cannot read it
    transport = EmbeddedTransport(journal)
    try:
        with pytest.raises(TransportFailed, match="ended while starting"):
            await transport.started()
    finally:
        await transport.close()
    err = capfd.readouterr().err
    assert "the embedded chain cannot start: ValueError" in err
    assert "Traceback" not in err


async def test_a_services_folder_in_the_working_directory_does_not_hide_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    transport = EmbeddedTransport()
    try:
        assert await transport.request("eth_blockNumber", []) == 0
    finally:
        await transport.close()
