"""The embedded default survives a restart: `walletql serve` stopped (SIGTERM) or killed
(SIGKILL) comes back with the same chain, and no PostgreSQL outlives its server."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from testkit.net import free_port
from testkit.pipeline import PASSWORD, RECIPIENT, fetch, submit, wait_for
from tests.serve_support import ServeProcess, clean_env, process_gone, run
from walletql.embedded_pg import EmbeddedPostgres

FAUCET_WEI = 10 * 10**18
VALUE = 10**15
BALANCE = "query { balance { wei } }"
CREATE = "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }"


def spent(tx: dict[str, Any]) -> int:
    return int(tx["value"]) + int(tx["gasUsed"]) * int(tx["effectiveGasPrice"])


async def balance(server: ServeProcess, token: str) -> int:
    body = await server.graphql(BALANCE, token=token)
    return int(body["data"]["balance"]["wei"])


def postgres_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def delete_journals(data_dir: Path) -> None:
    for journal in data_dir.glob("chain-*.journal"):
        journal.unlink()


async def wait_gone(pid: int) -> bool:
    for _ in range(300):
        if process_gone(pid):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"]
)
async def test_a_wallet_keeps_its_balance_and_nonce_across_a_restart(
    data_dir: Path, stop_signal: int
) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_WORKER_CHECK_INTERVAL_SECONDS="0.2")
    first = await ServeProcess(env).start()
    try:
        token = await first.token("alice")
        created = await first.graphql(CREATE, {"p": PASSWORD}, token=token)
        assert "errors" not in created, created
        one = await submit(first, token, value=str(VALUE))  # type: ignore[arg-type]
        one = await wait_for(first, token, one["id"], "CONFIRMED")  # type: ignore[arg-type]
        pg = postgres_pid(data_dir)
    finally:
        status = await first.stop(stop_signal)
    assert status == (0 if stop_signal == signal.SIGTERM else -signal.SIGKILL)
    # Killed or not, the server's PostgreSQL does not outlive it.
    assert await wait_gone(pg), f"postgres {pg} survived its server"

    second = await ServeProcess(env).start()
    try:
        assert await balance(second, token) == FAUCET_WEI - spent(one)
        # History stays true: the first transaction is still in its block.
        again = await fetch(second, token, one["id"])  # type: ignore[arg-type]
        assert (again["status"], again["blockNumber"]) == ("CONFIRMED", one["blockNumber"])
        two = await submit(second, token, value=str(VALUE))  # type: ignore[arg-type]
        assert int(two["nonce"]) == int(one["nonce"]) + 1
        two = await wait_for(second, token, two["id"], "CONFIRMED")  # type: ignore[arg-type]
        assert two["to"] == RECIPIENT
        assert await balance(second, token) == FAUCET_WEI - spent(one) - spent(two)
    finally:
        assert await second.stop() == 0


async def test_a_second_server_on_the_same_data_directory_refuses_in_one_line(
    data_dir: Path,
) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir))
    first = await ServeProcess(env).start()
    try:
        status, _, err = await run("serve", "--port", str(free_port()), env=env)
        assert status == 2
        lines = [line for line in err.splitlines() if line.startswith("walletql: ")]
        assert len(lines) == 2, err  # the data directory, then the reason
        assert "already runs the embedded chain" in lines[1]
        assert "Traceback" not in err
        # The first server still answers, with its own database.
        assert (await first.graphql("{ chains { chainId } }"))["data"]["chains"]
    finally:
        assert await first.stop() == 0


async def test_a_second_server_on_the_same_database_refuses_in_one_line(
    data_dir: Path, tmp_path: Path, database_url: str
) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_DATABASE_URL=database_url)
    first = await ServeProcess(env).start()
    try:
        other = {**env, "WALLETQL_DATA_DIR": str(tmp_path), "WALLETQL_PORT": str(free_port())}
        status, _, err = await run("serve", env=other)
        assert status == 2
        assert err.splitlines()[1:] == [
            f"walletql: WALLETQL_DATABASE_URL: walletql pid {first.pid} on {socket.gethostname()} "
            "already runs an embedded chain for this database; stop it, or give every process "
            "WALLETQL_CHAINS with one JSON-RPC node"
        ]
    finally:
        assert await first.stop() == 0


async def test_a_postgresql_left_running_is_stopped_by_the_next_command(data_dir: Path) -> None:
    # A cluster that is nobody's child, as an older walletql (or a crash without the
    # parent-death signal) left it.
    orphan = EmbeddedPostgres(data_dir)
    orphan._prepare_dir()
    orphan._run("initdb", "-D", str(orphan.pgdata), "-U", "postgres", "--auth=trust")
    orphan._run(
        "pg_ctl", "-D", str(orphan.pgdata), "-o", f"-h 127.0.0.1 -p {free_port()} -k ''",
        "-l", str(orphan.pgdata / "server.log"), "-w", "start",
    )  # fmt: skip
    pid = postgres_pid(data_dir)
    status, _, err = await run("migrate", env=clean_env(WALLETQL_DATA_DIR=str(data_dir)))
    assert status == 0, err
    assert "stopping an embedded PostgreSQL left behind by a dead process" in err
    assert await wait_gone(pid)
    # ... and the one the command started in its place stopped with it.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


async def test_a_lost_journal_is_reported_instead_of_serving_a_history_that_is_gone(
    data_dir: Path,
) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_WORKER_CHECK_INTERVAL_SECONDS="0.2")
    first = await ServeProcess(env).start()
    try:
        token = await first.token("alice")
        await first.graphql(CREATE, {"p": PASSWORD}, token=token)
        one = await submit(first, token, value=str(VALUE))  # type: ignore[arg-type]
        one = await wait_for(first, token, one["id"], "CONFIRMED")  # type: ignore[arg-type]
    finally:
        assert await first.stop() == 0
    delete_journals(data_dir)
    status, _, err = await run("serve", "--port", str(free_port()), env=env)
    assert status == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("walletql: WALLETQL_DATA_DIR: the embedded chain replayed from")
    assert f"lacks transaction {one['hash']}" in last
    assert "Traceback" not in err
