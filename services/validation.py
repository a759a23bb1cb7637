"""Parsing of user-supplied chain values, with errors that name the field."""

from __future__ import annotations

import functools
import re

from services.errors import BadUserInput

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
UINT256_MAX = 2**256 - 1


def parse_address(value: str, *, field: str | None) -> str:
    """Accept any case; reject a mixed-case address whose checksum is wrong."""
    if not _ADDRESS.fullmatch(value):
        raise BadUserInput("not a 20-byte 0x-hex address", field=field)
    checksummed = checksum_address(value)
    body = value[2:]
    mixed = body != body.lower() and body != body.upper()
    if mixed and checksummed != value:
        raise BadUserInput("address checksum (EIP-55) is wrong", field=field)
    return checksummed


@functools.lru_cache(maxsize=4096)
def checksum_address(value: str) -> str:
    """The EIP-55 form of a 0x-hex address (a keccak each: the same addresses come back, a
    wallet's own above all)."""
    # eth_utils costs ~0.1 s to import; nothing on the start-up path needs it.
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(value))


def check_text(value: str, *, field: str) -> str:
    """Text that is stored or hashed: no NUL (PostgreSQL refuses it) and no lone surrogate
    (it has no UTF-8 encoding)."""
    if "\x00" in value:
        raise BadUserInput(f"{field} must not contain NUL characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput(f"{field} is not valid Unicode text", field=field) from None
    return value
