"""The in-process EVM (py-evm through web3's eth-tester provider) as a JSON-RPC transport.

Part of the ``embedded`` extra: a production install has neither web3's tester nor py-evm,
and nothing imports this module unless a chain's ``rpc_url`` is ``embedded``.
"""

from __future__ import annotations

from typing import Any

from services.rpc import RpcError

EXTRA_HINT = "the in-process EVM needs the embedded extra: pip install 'walletql[embedded]'"


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("web3", "eth_tester"))


class EmbeddedTransport:
    """Requests go through web3's eth-tester middleware (JSON-RPC names and shapes in and
    out); eth-tester raises where a node would answer with an error, so those become
    ``RpcError`` here."""

    def __init__(self) -> None:
        if not available():
            raise RuntimeError(EXTRA_HINT)
        from web3 import AsyncWeb3
        from web3.providers.eth_tester import AsyncEthereumTesterProvider

        self._w3 = AsyncWeb3(AsyncEthereumTesterProvider())

    async def request(self, method: str, params: list[Any]) -> Any:
        provider = self._w3.provider
        send = await provider.request_func(self._w3, self._w3.middleware_onion)
        try:
            response = await send(method, params)
        except Exception as exc:
            message = str(exc.args[0] if exc.args else exc)
            code = 3 if "revert" in message.lower() else -32000
            raise RpcError(code, message) from exc
        if "error" in response:
            error = response["error"]
            raise RpcError(int(error.get("code", -32000)), str(error.get("message", "")))
        return response.get("result")

    async def close(self) -> None:
        return None
