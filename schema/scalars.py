"""Custom scalars: ``BigInt`` (wei as a decimal string) and ``Address`` (EIP-55)."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

import re
from datetime import datetime
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
    # No field of its own: the error names the argument or input field that holds the value.
    return parse_address(value, field=None)


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


def _parse_datetime(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise BadUserInput("expected an RFC 3339 date-time with a time zone offset")


SCALAR_MAP: dict[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="A point in time as a JSON string in RFC 3339 form, e.g. "
        "2026-01-02T03:04:05.678901+00:00 (always with an offset; output in UTC). "
        "TypeScript: string; parse with new Date().",
        specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
        serialize=lambda value: value.isoformat(),
        parse_value=_parse_datetime,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="A non-negative integer from 0 to 2^256-1 (a uint256: wei amounts, gas, "
        "nonces, block numbers, event cursors). Output: a JSON string of decimal digits, no "
        "sign, no leading zeros, no exponent (TypeScript: string; parse with BigInt()). "
        "Input: that string, or a JSON integer below 2^53.",
        serialize=str,
        parse_value=_parse_bigint,
    ),
    Address: strawberry.scalar(
        name="Address",
        description="A 20-byte Ethereum address as a JSON string: 0x and 40 hex digits "
        "(TypeScript: `0x${string}`). Output: EIP-55 checksummed. Input: any case, but a "
        "mixed-case address must have a valid EIP-55 checksum.",
        specified_by_url="https://eips.ethereum.org/EIPS/eip-55",
        serialize=str,
        parse_value=_parse_address,
    ),
    ChainId: strawberry.scalar(
        name="ChainId",
        description="An EIP-155 chain id: a positive integer below 2^53, as a JSON number "
        "(TypeScript: number; chain ids can exceed the 32 bits of GraphQL's Int).",
        specified_by_url="https://eips.ethereum.org/EIPS/eip-155",
        serialize=int,
        parse_value=_parse_chain_id,
    ),
    Hex: strawberry.scalar(
        name="Hex",
        description="Bytes as a JSON string: 0x, then two hex digits per byte (TypeScript: "
        "`0x${string}`); 0x alone is no bytes. Output: lower case. Input: any case.",
        serialize=str,
        parse_value=_parse_hex,
    ),
}


def optional_big(value: int | None) -> BigInt | None:
    """A nullable amount as a BigInt (a column's Decimal or int, or None)."""
    return BigInt(int(value)) if value is not None else None
