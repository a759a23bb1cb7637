"""Custom scalars: ``BigInt`` (wei as a decimal string) and ``Address`` (EIP-55)."""

from __future__ import annotations

import re
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from services.errors import BadUserInput
from services.validation import UINT256_MAX, parse_address

_DECIMAL = re.compile(r"[0-9]{1,78}")


def _parse_bigint(value: object) -> int:
    # Integers arrive as JSON numbers or decimal strings; floats would have lost precision.
    if isinstance(value, bool):
        raise BadUserInput("expected a non-negative integer")
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        parsed = int(value)
    else:
        raise BadUserInput("expected a non-negative integer as a decimal string")
    if parsed < 0 or parsed > UINT256_MAX:
        raise BadUserInput("integer out of range 0..2^256-1")
    return parsed


def _parse_address(value: object) -> str:
    if not isinstance(value, str):
        raise BadUserInput("expected a 0x-hex address string")
    return parse_address(value, field="address")


_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


def _parse_hex(value: object) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise BadUserInput("expected 0x-prefixed hex of even length")
    return value.lower()


_CHAIN_ID = re.compile(r"[0-9]{1,16}")  # ASCII digits only: "²".isdigit() is true


def _parse_chain_id(value: object) -> int:
    if isinstance(value, str) and _CHAIN_ID.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise BadUserInput("expected a chain id: a positive integer below 2^53")
    return value


ChainId = NewType("ChainId", int)
BigInt = NewType("BigInt", int)
Address = NewType("Address", str)
Hex = NewType("Hex", str)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A non-negative integer up to 2^256-1, as a decimal string (wei amounts).",
        serialize=str,
        parse_value=_parse_bigint,
    ),
    Address: strawberry.scalar(
        name="Address",
        description="A 20-byte Ethereum address: EIP-55 checksummed on output; any case on "
        "input, but a mixed-case address must have a valid checksum.",
        serialize=str,
        parse_value=_parse_address,
    ),
    ChainId: strawberry.scalar(
        name="ChainId",
        description="An EIP-155 chain id, as a JSON number (chain ids can exceed 32 bits).",
        serialize=int,
        parse_value=_parse_chain_id,
    ),
    Hex: strawberry.scalar(
        name="Hex",
        description="Bytes as 0x-prefixed hex of even length.",
        serialize=str,
        parse_value=_parse_hex,
    ),
}
