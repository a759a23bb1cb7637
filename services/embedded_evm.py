"""The in-process EVM (py-evm through web3's eth-tester provider) as a JSON-RPC transport.

Part of the ``embedded`` extra: a production install has neither web3's tester nor py-evm,
and nothing imports this module unless a chain's ``rpc_url`` is ``embedded``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from services.rpc import RpcError

if TYPE_CHECKING:
    from services.devchain import ChainJournal

EXTRA_HINT = "the in-process EVM needs the embedded extra: pip install 'walletql[embedded]'"


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("web3", "eth_tester"))


class EmbeddedTransport:
    """Requests go through web3's eth-tester middleware (JSON-RPC names and shapes in and
    out); eth-tester raises where a node would answer with an error, so those become
    ``RpcError`` here.

    py-evm is pure Python (a gas estimate is a binary search of whole executions, several
    ms), so every request runs in one thread of its own, never on the event loop: the loop
    gets the interpreter back at every switch interval, and one thread keeps the chain's
    requests in order."""

    def __init__(self, journal: ChainJournal | None = None) -> None:
        """With a journal, its transactions are mined again first, and every transaction
        accepted later is appended to it (services/devchain.py)."""
        if not available():
            raise RuntimeError(EXTRA_HINT)
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
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evm")

    def _send(self, method: str, params: list[Any]) -> Any:
        send = self._w3.provider.request_func(self._w3, self._w3.middleware_onion)
        response = send(method, params)
        accepted = method == "eth_sendRawTransaction" and "error" not in response
        if accepted and self._journal is not None:
            # Accepted (and mined): durable before the caller hears of it.
            self._journal.append(bytes.fromhex(str(params[0])[2:]))
        return response

    def _answer(self, method: str, params: list[Any]) -> Any:
        """The call's result, or the RpcError a node would have answered with (in the
        thread)."""
        try:
            response = self._send(method, params)
        except Exception as exc:
            from services.devchain import refusal_message

            message = refusal_message(str(exc.args[0] if exc.args else exc))
            refused = RpcError(3 if "revert" in message.lower() else -32000, message)
            refused.__cause__ = exc
            return refused
        if "error" in response:
            from services.devchain import refusal_message

            error = response["error"]
            message = refusal_message(str(error.get("message", "")))
            return RpcError(int(error.get("code", -32000)), message)
        return response.get("result")

    async def request(self, method: str, params: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._thread, self._answer, method, params)
        if isinstance(answer, RpcError):
            raise answer
        return answer

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Each call's result or RpcError, in order, in one trip to the EVM's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._thread, lambda: [self._answer(method, params) for method, params in calls]
        )

    async def close(self) -> None:
        self._thread.shutdown(wait=True)
