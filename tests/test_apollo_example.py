"""examples/node/apollo_resume.mjs follows every event across a server crash: each userSeq
once, in order, with none missing, including those committed while it was disconnected."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import AsyncWeb3

from testkit import ROOT
from testkit.anvil import Anvil
from testkit.env import chain_of, walletql_env
from testkit.graphql import data
from testkit.pipeline import fund
from testkit.process import ServerProcess
from walletql.devauth import DevSigner

EXAMPLE = ROOT / "examples" / "node"
PASSWORD = "correct horse battery"
SUBMIT = """mutation($p: String!) { submitTransaction(input: {
  to: "0x000000000000000000000000000000000000dEaD", value: "1000", password: $p
}) { id } }"""
STATUS = "query($id: ID!) { transaction(id: $id) { status } }"
CREATE = "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }"


async def post(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await data(client, f"{url}/graphql", query, variables, token=token)


async def confirmed_transaction(url: str, token: str) -> str:
    tx_id: str = (await post(url, token, SUBMIT, {"p": PASSWORD}))["submitTransaction"]["id"]
    for _ in range(600):
        if (await post(url, token, STATUS, {"id": tx_id}))["transaction"]["status"] == "CONFIRMED":
            return tx_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{tx_id} never reached CONFIRMED")


def confirmed(seen: list[dict[str, Any]], tx_id: str) -> bool:
    return any(e["transactionId"] == tx_id and e["status"] == "CONFIRMED" for e in seen)


async def read_until_confirmed(
    stream: asyncio.StreamReader, tx_ids: list[str], seen: list[dict[str, Any]]
) -> None:
    """Read event lines into ``seen`` until each of ``tx_ids`` has shown CONFIRMED."""
    while not all(confirmed(seen, t) for t in tx_ids):
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, "the example exited"
        seen.append(json.loads(line))


async def test_the_apollo_example_resumes_after_a_kill_without_duplicates_or_gaps(
    tmp_path: Path, database_url: str, anvil: Anvil, anvil_w3: AsyncWeb3[Any]
) -> None:
    if shutil.which("node") is None or not (EXAMPLE / "node_modules/@apollo/client").is_dir():
        pytest.skip("examples/node is not installed: run `make node`")
    # anvil, not the in-process EVM: the chain must outlive the API processes.
    env = walletql_env(
        database_url, tmp_path, WALLETQL_CHAINS=json.dumps([chain_of(anvil, confirmations=1)])
    )
    token = DevSigner(tmp_path).mint("alice")
    seen: list[dict[str, Any]] = []
    async with ServerProcess(env) as server:
        created = await post(server.url, token, CREATE, {"p": PASSWORD})
        await fund(anvil_w3, created["createUser"]["wallet"]["address"], 10**18)
        first = await confirmed_transaction(server.url, token)
        example = await asyncio.create_subprocess_exec(
            "node", str(EXAMPLE / "apollo_resume.mjs"), server.url, token,
            cwd=EXAMPLE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert example.stdout is not None
        try:
            await read_until_confirmed(example.stdout, [first], seen)
            assert server.proc is not None
            server.proc.kill()  # a crash: no shutdown, the socket just drops
            await server.proc.wait()
            # While the example is cut off, another API process takes two more transactions.
            async with ServerProcess(env) as other:
                missed = [await confirmed_transaction(other.url, token) for _ in range(2)]
            async with ServerProcess(env, port=server.port):  # the example's server is back
                await read_until_confirmed(example.stdout, [first, *missed], seen)
        finally:
            example.terminate()
            await example.wait()
    user_seqs = [int(e["userSeq"]) for e in seen]
    assert user_seqs == list(range(1, len(seen) + 1))  # each once, in order, none missing
    order = [e["transactionId"] for e in seen]
    assert sorted(set(order), key=order.index) == [first, *missed]
    for tx_id in (first, *missed):
        statuses = [e["status"] for e in seen if e["transactionId"] == tx_id]
        assert statuses[0] == "QUEUED"
        assert statuses[-1] == "CONFIRMED"
