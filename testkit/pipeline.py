"""A wallet's way through the pipeline: a worker-running server, a funded wallet, submit,
and wait for a status; ``one_submitted`` does the first three for the usual test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import AsyncWeb3

from testkit.server import LiveServer
from walletql.app import create_app
from walletql.devauth import DevSigner
from walletql.settings import Settings

PASSWORD = "correct horse battery"
RECIPIENT = ChecksumAddress(HexAddress(HexStr("0x000000000000000000000000000000000000dEaD")))
FINAL = {"CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"}
CREATE_USER = "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }"
SUBMIT = """mutation($i: SubmitTransactionInput!) {
  submitTransaction(input: $i) { id status nonce hash from }
}"""
TX = """query($id: ID!) { transaction(id: $id) {
  id status chainId from to value nonce hash hashes gasLimit maxFeePerGas blockNumber
  confirmations gasUsed effectiveGasPrice error { code message } events { seq status reason }
} }"""


def pipeline_server(settings: Settings, *, run_worker: bool = True) -> LiveServer:
    return LiveServer(create_app(settings, run_worker=run_worker))


async def new_wallet(
    server: LiveServer, signer: DevSigner, sub: str, w3: AsyncWeb3[Any] | None, ether: int = 10
) -> tuple[str, ChecksumAddress]:
    """(token, address) of a new user, whose wallet holds ``ether`` when ``w3`` is given."""
    token = signer.mint(sub)
    body = await server.graphql(CREATE_USER, {"p": PASSWORD}, token=token)
    address = ChecksumAddress(body["data"]["createUser"]["wallet"]["address"])
    if w3 is not None:
        await fund(w3, address, ether * 10**18)
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


async def fund(w3: AsyncWeb3[Any], address: str, wei: int) -> None:
    """Set ``address``'s balance on an anvil node (anvil_setBalance)."""
    await w3.provider.make_request("anvil_setBalance", [address, hex(wei)])


async def mine(w3: AsyncWeb3[Any], blocks: int = 1) -> None:
    for _ in range(blocks):
        await w3.provider.make_request("evm_mine", [])


@dataclass
class Submitted:
    """alice's funded wallet on a pipeline server, and the transaction she submitted."""

    server: LiveServer
    token: str
    address: ChecksumAddress
    tx: dict[str, Any]

    async def fetch(self) -> dict[str, Any]:
        """Her transaction as it is now."""
        return await fetch(self.server, self.token, self.tx["id"])

    async def wait(self, statuses: set[str] | str, **options: Any) -> dict[str, Any]:
        """Her transaction once it has one of ``statuses`` (``wait_for``'s options)."""
        return await wait_for(self.server, self.token, self.tx["id"], statuses, **options)


@asynccontextmanager
async def one_submitted(
    settings: Settings,
    signer: DevSigner,
    w3: AsyncWeb3[Any] | None,
    *,
    run_worker: bool = True,
    ether: int = 10,
    **fields: Any,
) -> AsyncIterator[Submitted]:
    """A pipeline server (running the worker unless told not to), alice's wallet holding
    ``ether`` (when ``w3`` is given), and one transaction she submitted with ``fields``."""
    async with pipeline_server(settings, run_worker=run_worker) as server:
        token, address = await new_wallet(server, signer, "alice", w3, ether)
        yield Submitted(server, token, address, await submit(server, token, **fields))
