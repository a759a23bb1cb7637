"""ERC-20 reads: symbol, decimals and balanceOf, one token at a time, errors per token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from services.chains import Chain
from services.errors import ChainUnavailable

SYMBOL_SELECTOR = bytes.fromhex("95d89b41")
DECIMALS_SELECTOR = bytes.fromhex("313ce567")
_BALANCE_OF = bytes.fromhex("70a08231")


@dataclass(frozen=True)
class TokenBalance:
    token: str
    symbol: str | None = None
    decimals: int | None = None
    raw: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def formatted(self) -> str | None:
        if self.raw is None or self.decimals is None:
            return None
        return format_units(self.raw, self.decimals)


def format_units(raw: int, decimals: int) -> str:
    """Exact decimal text of ``raw / 10**decimals``, without exponent or trailing zeros."""
    text = format(Decimal(raw).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def decode_symbol(result: bytes) -> str:
    from eth_abi.abi import decode

    try:
        (symbol,) = decode(["string"], result)
        return str(symbol)
    except Exception:
        if len(result) == 32:  # pre-standard tokens return bytes32
            return result.rstrip(b"\0").decode("utf-8", "replace")
        raise


async def read_token(chain: Chain, token: str, holder: str) -> TokenBalance:
    from eth_abi.abi import decode, encode

    try:
        symbol_raw, decimals_raw, balance_raw = await asyncio.gather(
            chain.eth_call(token, SYMBOL_SELECTOR),
            chain.eth_call(token, DECIMALS_SELECTOR),
            chain.eth_call(token, _BALANCE_OF + encode(["address"], [holder])),
        )
        (decimals,) = decode(["uint8"], decimals_raw)
        (balance,) = decode(["uint256"], balance_raw)
        symbol = decode_symbol(symbol_raw)
    except ChainUnavailable:
        raise
    except Exception:
        return TokenBalance(
            token,
            error_code="NOT_ERC20",
            error_message="the address does not answer symbol(), decimals() and balanceOf() "
            "as an ERC-20 contract",
        )
    return TokenBalance(token, symbol, int(decimals), int(balance))
