"""Helpers for pipeline tests: a worker-running server on a chain, submit and wait."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from tests.chain_support import Anvil
from tests.support import LiveServer, make_settings
from walletql.app import create_app
from walletql.devauth import DevSigner

PASSWORD = "correct horse battery"
RECIPIENT = "0x000000000000000000000000000000000000dEaD"
FINAL = {"CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"}
SUBMIT = """mutation($i: SubmitTransactionInput!) {
  submitTransaction(input: $i) { id status nonce hash from }
}"""
TX = """query($id: ID!) { transaction(id: $id) {
  id status chainId from to value nonce hash hashes gasLimit maxFeePerGas blockNumber
  confirmations gasUsed effectiveGasPrice error { code message } events { seq status reason }
} }"""


def pipeline_settings(
    data_dir: Path, database_url: str, anvil: Anvil | None, **overrides: Any
) -> Any:
    chain_overrides = overrides.pop("chain", {})
    chains = []
    if anvil is not None:
        chains = [
            {
                "chain_id": anvil.chain_id, "name": "anvil", "rpc_url": anvil.url,
                "confirmations": 1, "bump_interval_seconds": 60, "deadline_seconds": 300,
                **chain_overrides,
            }
        ]  # fmt: skip
    values: dict[str, Any] = {
        "worker_check_interval_seconds": 0.2,
        "queue_wait_seconds": 0.5,
        "sweeper_interval_seconds": 0.5,
        "sweeper_grace_seconds": 2,
        **overrides,
    }
    if chains:
        values["chains"] = chains
    return make_settings(data_dir, database_url, **values)


def pipeline_server(settings: Any, *, run_worker: bool = True) -> LiveServer:
    return LiveServer(create_app(settings, run_worker=run_worker))


async def new_wallet(
    server: LiveServer, signer: DevSigner, sub: str, w3: AsyncWeb3[Any] | None, ether: int = 10
) -> tuple[str, str]:
    token = signer.mint(sub)
    body = await server.graphql(
        "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }",
        {"p": PASSWORD},
        token=token,
    )
    address: str = body["data"]["createUser"]["wallet"]["address"]
    if w3 is not None:
        await w3.provider.make_request("anvil_setBalance", [address, hex(ether * 10**18)])  # type: ignore[arg-type]
    return token, address


async def submit(server: LiveServer, token: str, **fields: Any) -> dict[str, Any]:
    body = await server.graphql(
        SUBMIT,
        {"i": {"to": RECIPIENT, "value": "1000", "password": PASSWORD, **fields}},
        token=token,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitTransaction"]
    return result


async def fetch(server: LiveServer, token: str, tx_id: str) -> dict[str, Any]:
    body = await server.graphql(TX, {"id": tx_id}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["transaction"]
    return result


async def wait_for(
    server: LiveServer,
    token: str,
    tx_id: str,
    statuses: set[str] | str,
    *,
    timeout: float = 30,
    reason: str | None = None,
) -> dict[str, Any]:
    """Poll until the transaction has one of ``statuses`` (and an event reason starting
    with ``reason``, if given)."""
    wanted = {statuses} if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    tx: dict[str, Any] = {}
    while time.monotonic() < deadline:
        tx = await fetch(server, token, tx_id)
        reasons = [e["reason"] or "" for e in tx["events"]]
        if tx["status"] in wanted and (
            reason is None or any(r.startswith(reason) for r in reasons)
        ):
            return tx
        await asyncio.sleep(0.1)
    raise AssertionError(f"transaction never reached {wanted} ({reason}): {tx}")


async def mine(w3: AsyncWeb3[Any], blocks: int = 1) -> None:
    for _ in range(blocks):
        await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def worker_env(settings: Any, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a separate `walletql` process sharing ``settings``' chains and data
    dir (nothing inherited from this process's WALLETQL_* variables)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")},
        "WALLETQL_DATABASE_URL": database_url,
        "WALLETQL_DATA_DIR": str(settings.data_dir),
        "WALLETQL_CHAINS": json.dumps([c.model_dump() for c in settings.chains]),
        "WALLETQL_QUEUE_WAIT_SECONDS": "0.5",
        "WALLETQL_WORKER_CHECK_INTERVAL_SECONDS": "0.2",
        **extra,
    }


async def run_crashing_worker(env: dict[str, str]) -> None:
    """Run tests.fault_worker: it broadcasts once, then dies by SIGKILL before committing."""
    crashing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fault_worker", env=env, cwd=Path(__file__).parent.parent
    )
    assert await asyncio.wait_for(crashing.wait(), timeout=60) == -9
