"""Ethereum JSON-RPC values: quantities and bytes as 0x-hex, and a revert's reason decoded
from its data. Plain Python: no web3, no eth-abi."""

from __future__ import annotations

from typing import Any

from services.rpc import RpcError

# Error(string) and Panic(uint256): how Solidity encodes a revert.
_ERROR_SELECTOR = "08c379a0"
_PANIC_SELECTOR = "4e487b71"


def quantity(value: Any) -> int:
    """A JSON-RPC quantity ("0x1a") as an int; the in-process EVM answers with ints."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    raise ValueError(f"not a quantity: {value!r}")


def to_hex(value: int | bytes | str) -> str:
    if isinstance(value, bool):
        raise TypeError("a bool is not a quantity")
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def rpc_transaction(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction or call as JSON-RPC wants it: quantities and bytes as 0x-hex."""
    return {
        key: to_hex(value) for key, value in tx.items() if value is not None and key != "chainId"
    }


def revert_message(error: RpcError) -> str:
    """The node's message, with the contract's reason decoded from the revert data."""
    data = error.data
    if isinstance(data, dict):  # some nodes nest it: {"data": {"data": "0x…"}}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        payload = data[2:]
        try:
            if payload.startswith(_ERROR_SELECTOR):
                body = bytes.fromhex(payload[8:])
                length = int.from_bytes(body[32:64], "big")
                reason = body[64 : 64 + length].decode("utf-8", errors="replace")
                return f"execution reverted: {reason}"
            if payload.startswith(_PANIC_SELECTOR):
                return f"execution reverted: panic code {hex(int(payload[8:] or '0', 16))}"
        except ValueError:
            pass
    return error.message or "execution reverted"


def is_revert(error: RpcError) -> bool:
    return error.code == 3 or "revert" in error.message.lower()
