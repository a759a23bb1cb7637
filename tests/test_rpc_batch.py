"""A submit's chain reads go to the node as one JSON-RPC batch, and each answer (or error)
serves the call it belongs to; a node that does not take batches is asked one call at a time.
The node here is a small JSON-RPC server over real HTTP that counts what it receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from services.chains import Chain, ChainConfig
from services.errors import BadUserInput
from services.transactions_build import TxRequest, fill_affordable, read_ahead

SENDER = "0x" + "11" * 20
TO = "0x" + "22" * 20
ANSWERS: dict[str, Any] = {
    "eth_chainId": "0x7a69",
    "eth_getBlockByNumber": {"number": "0x10", "gasLimit": "0x1c9c380", "baseFeePerGas": "0x7"},
    "eth_getBalance": hex(10**18),
    "eth_getTransactionCount": "0x3",
    "eth_maxPriorityFeePerGas": "0x2",
    "eth_gasPrice": "0x9",
    "eth_estimateGas": "0x5208",
}


class Node:
    """Answers ANSWERS by method, an error for ``failing``; counts HTTP requests and calls."""

    def __init__(self, *, batches: bool) -> None:
        self.batches = batches
        self.failing: dict[str, str] = {}
        self.posts = 0
        self.calls: list[str] = []

    def _answer(self, call: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(call["method"])
        if call["method"] in self.failing:
            error = {"code": 3, "message": self.failing[call["method"]]}
            return {"jsonrpc": "2.0", "id": call["id"], "error": error}
        return {"jsonrpc": "2.0", "id": call["id"], "result": ANSWERS[call["method"]]}

    async def handle(self, request: web.Request) -> web.Response:
        self.posts += 1
        body = await request.json()
        if isinstance(body, list):
            if not self.batches:
                refusal = {"code": -32600, "message": "batch requests are not supported"}
                return web.json_response({"jsonrpc": "2.0", "id": None, "error": refusal})
            # Answers may come in any order: they are matched by id.
            return web.json_response([self._answer(call) for call in reversed(body)])
        return web.json_response(self._answer(body))


async def _serve(node: Node) -> AsyncIterator[Chain]:
    app = web.Application()
    app.router.add_post("/", node.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = ChainConfig(
        chain_id=31337, name="test", rpc_url=f"http://127.0.0.1:{port}/", confirmations=1,
        deadline_seconds=300, bump_interval_seconds=60,
    )  # fmt: skip
    chain = Chain(config, 5.0)
    try:
        yield chain
    finally:
        await chain.close()
        await runner.cleanup()


@pytest.fixture
def node() -> Node:
    return Node(batches=True)


@pytest.fixture
async def chain(node: Node) -> AsyncIterator[Chain]:
    async for served in _serve(node):
        yield served


async def test_a_submits_reads_are_one_http_request(chain: Chain, node: Node) -> None:
    req = TxRequest(to=TO, value=5)
    ahead = await read_ahead(chain, SENDER, req, pending_nonce=True)
    posts = node.posts
    nonce = await ahead.pending_nonce(SENDER)
    fields = await fill_affordable(ahead, SENDER, TxRequest(to=TO, value=5, nonce=nonce))
    assert node.posts == posts  # every read was answered by the batch
    assert fields == {
        "chainId": 31337, "value": 5, "data": b"", "nonce": 3, "type": 2, "to": TO,
        "maxFeePerGas": 2 * 7 + 2, "maxPriorityFeePerGas": 2, "gas": 21_000,
    }  # fmt: skip


async def test_an_answer_serves_one_call_and_later_calls_ask_the_node(
    chain: Chain, node: Node
) -> None:
    ahead = await read_ahead(chain, SENDER, TxRequest(to=TO), pending_nonce=True)
    assert await ahead.pending_nonce(SENDER) == 3
    posts = node.posts
    ANSWERS["eth_getTransactionCount"] = "0x4"
    try:
        assert await ahead.pending_nonce(SENDER) == 4
        assert await chain.pending_nonce(SENDER) == 4  # the chain itself never holds answers
    finally:
        ANSWERS["eth_getTransactionCount"] = "0x3"
    assert node.posts == posts + 2


async def test_an_error_in_the_batch_is_the_answer_to_its_own_call(
    chain: Chain, node: Node
) -> None:
    node.failing["eth_estimateGas"] = "execution reverted"
    ahead = await read_ahead(chain, SENDER, TxRequest(to=TO), pending_nonce=True)
    assert await ahead.pending_nonce(SENDER) == 3
    with pytest.raises(BadUserInput, match="would revert"):
        await fill_affordable(ahead, SENDER, TxRequest(to=TO, nonce=3))


async def test_a_node_without_batches_is_asked_one_call_at_a_time() -> None:
    node = Node(batches=False)
    async for chain in _serve(node):
        for _ in range(2):
            ahead = await read_ahead(chain, SENDER, TxRequest(to=TO), pending_nonce=True)
            assert await ahead.pending_nonce(SENDER) == 3
            fields = await fill_affordable(ahead, SENDER, TxRequest(to=TO, nonce=3))
            assert fields["gas"] == 21_000
        # The refused batch was tried once; afterwards every call went on its own.
        batches = 1
        assert node.posts == batches + len(node.calls)
