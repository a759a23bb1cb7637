"""Signing the transaction shapes walletql builds, without eth-account's general machinery.

A submit signs a ladder of about a dozen transactions; eth-account spends ~0.8 ms on each
validating and converting a general dict. The shapes ``services/transactions_build.py``
fills (EIP-1559 with no access list, and EIP-155 legacy) are encoded here directly: RLP,
keccak and libsecp256k1 (coincurve, RFC 6979 nonces, low s) give the same bytes eth-account
gives (a property test compares them); any other shape is left to eth-account.
"""

from __future__ import annotations

from typing import Any

from services.validation import checksum_address

_TYPE2 = frozenset({"chainId", "nonce", "to", "value", "data", "gas", "type"})
_TYPE2_FEES = frozenset({"maxFeePerGas", "maxPriorityFeePerGas"})
_LEGACY = frozenset({"chainId", "nonce", "to", "value", "data", "gas", "gasPrice"})


def _int(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _rlp(item: int | bytes | list[Any]) -> bytes:
    """Recursive Length Prefix encoding of non-negative ints, byte strings and lists of them
    (what the ``rlp`` package gives, without its general sedes machinery)."""
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    payload = b"".join(_rlp(element) for element in item)
    return _rlp_length(len(payload), 0xC0) + payload


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


class KnownShapeSigner:
    """Signs the known shapes with one key, whose context is built once (a ladder signs a
    dozen transactions)."""

    def __init__(self, key: bytes) -> None:
        from coincurve import PrivateKey

        self._signer = PrivateKey(key)

    def _to(self, tx: dict[str, Any]) -> bytes | None:
        to = tx.get("to")
        if to is None:
            return b""
        return _checked_address(to) if isinstance(to, str) else None

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, bytes] | None:
        """(raw transaction, its hash), or None when ``tx`` is not a shape this module knows."""
        from eth_hash.auto import keccak

        keys = tx.keys()
        type2 = tx.get("type") == 2 and keys == _TYPE2 | _TYPE2_FEES
        legacy = "type" not in tx and (keys == _LEGACY or keys == _LEGACY - {"to"})
        if not (type2 or legacy):
            return None  # a type-2 deployment (no "to") among them: eth-account's own path
        to, data = self._to(tx), tx["data"]
        numbers = [_int(tx[name]) for name in ("chainId", "nonce", "value", "gas")]
        if to is None or not isinstance(data, bytes) or any(n is None for n in numbers):
            return None
        chain_id, nonce, value, gas = (int(n or 0) for n in numbers)
        if type2:
            priority, max_fee = _int(tx["maxPriorityFeePerGas"]), _int(tx["maxFeePerGas"])
            if priority is None or max_fee is None:
                return None
            fields: list[Any] = [chain_id, nonce, priority, max_fee, gas, to, value, data, []]
            signature = self._signer.sign_recoverable(keccak(b"\x02" + _rlp(fields)), hasher=None)
            r, s, parity = signature[:32], signature[32:64], signature[64]
            raw = b"\x02" + _rlp(
                [*fields, parity, int.from_bytes(r, "big"), int.from_bytes(s, "big")]
            )
            return raw, keccak(raw)
        price = _int(tx["gasPrice"])
        if price is None:
            return None
        body: list[Any] = [nonce, price, gas, to, value, data]
        signature = self._signer.sign_recoverable(
            keccak(_rlp([*body, chain_id, 0, 0])), hasher=None
        )
        r, s, recovery = signature[:32], signature[32:64], signature[64]
        v = recovery + 35 + 2 * chain_id
        raw = _rlp([*body, v, int.from_bytes(r, "big"), int.from_bytes(s, "big")])
        return raw, keccak(raw)


def _checked_address(to: str) -> bytes | None:
    if len(to) == 42 and to[:2] == "0x":
        try:
            raw = bytes.fromhex(to[2:])
        except ValueError:
            return None
        # eth-account refuses an address that is not checksummed; so does this path.
        return raw if checksum_address(to) == to else None
    return None
