"""ERC-20 `transfer(address,uint256)`: the calldata transferToken sends, and its reading back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.chains import Chain
from services.errors import ChainUnavailable
from services.tokens import DECIMALS_SELECTOR, SYMBOL_SELECTOR, decode_symbol

TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
_TRANSFER_LENGTH = 4 + 32 + 32


@dataclass(frozen=True)
class TokenTransfer:
    """What a transaction's calldata says it moves: ``amount`` base units of ``token``."""

    token: str
    to: str
    amount: int


@dataclass(frozen=True)
class TokenMetadata:
    symbol: str | None
    decimals: int | None


def encode_transfer(to: str, amount: int) -> bytes:
    from eth_abi.abi import encode

    return TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])


def decode_transfer(token: str | None, data: bytes) -> TokenTransfer | None:
    """The transfer a transaction's calldata encodes; None for any other call."""
    if token is None or len(data) != _TRANSFER_LENGTH or data[:4] != TRANSFER_SELECTOR:
        return None
    head, amount = data[4:36], int.from_bytes(data[36:], "big")
    if any(head[:12]):
        return None
    from eth_utils.address import to_checksum_address

    return TokenTransfer(token, to_checksum_address(head[12:]), amount)


async def token_metadata(chain: Chain, token: str) -> TokenMetadata:
    """symbol() and decimals(), each null when the contract does not answer it."""
    from eth_abi.abi import decode

    async def read(selector: bytes) -> bytes | None:
        try:
            return await chain.eth_call(token, selector)
        except (ChainUnavailable, Exception):  # a dead node or a non-token: no metadata
            return None

    symbol_raw, decimals_raw = await asyncio.gather(read(SYMBOL_SELECTOR), read(DECIMALS_SELECTOR))
    symbol = decimals = None
    try:
        symbol = decode_symbol(symbol_raw) if symbol_raw else None
    except Exception:
        symbol = None
    try:
        decimals = int(decode(["uint8"], decimals_raw)[0]) if decimals_raw else None
    except Exception:
        decimals = None
    return TokenMetadata(symbol, decimals)
