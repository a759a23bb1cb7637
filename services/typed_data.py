"""EIP-712 typed data: structural checks that name the bad field's path before signing."""

from __future__ import annotations

import re
from typing import Any

from services.errors import BadUserInput

_INT = re.compile(r"^(u?)int(\d*)$")
_BYTES = re.compile(r"^bytes(\d+)$")
_ARRAY = re.compile(r"^(.+)\[(\d*)\]$")
_HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DOMAIN_FIELDS = {
    "name": "string",
    "version": "string",
    "chainId": "uint256",
    "verifyingContract": "address",
    "salt": "bytes32",
}


def _bad(path: str, message: str) -> BadUserInput:
    return BadUserInput(f"{path}: {message}", field=path)


def _check_int(value: Any, kind: str, bits: int, path: str) -> None:
    if isinstance(value, bool):
        raise _bad(path, f"expected {kind}, got a boolean")
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise _bad(path, f"expected {kind} as a number or numeric string") from None
    if not isinstance(value, int):
        raise _bad(path, f"expected {kind}")
    signed = not kind.startswith("u")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= value <= high:
        raise _bad(path, f"{value} is out of range for {kind}")


def _check_value(types: dict[str, Any], kind: str, value: Any, path: str) -> None:
    if m := _ARRAY.match(kind):
        if not isinstance(value, list):
            raise _bad(path, f"expected an array of {m[1]}")
        if m[2] and len(value) != int(m[2]):
            raise _bad(path, f"expected exactly {m[2]} items")
        for i, item in enumerate(value):
            _check_value(types, m[1], item, f"{path}[{i}]")
    elif kind in types:
        _check_struct(types, kind, value, path)
    elif m := _INT.match(kind):
        bits = int(m[2] or 256)
        if bits % 8 or not 8 <= bits <= 256:
            raise _bad(path, f"unknown type {kind}")
        _check_int(value, kind, bits, path)
    elif kind == "address":
        if not isinstance(value, str) or not _ADDRESS.match(value):
            raise _bad(path, "expected a 20-byte 0x-hex address")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _bad(path, "expected true or false")
    elif kind == "string":
        if not isinstance(value, str):
            raise _bad(path, "expected a string")
    elif kind == "bytes" or (m := _BYTES.match(kind)):
        if not isinstance(value, str) or not _HEX.match(value):
            raise _bad(path, "expected 0x-hex bytes of even length")
        if kind != "bytes" and m and (len(value) - 2) // 2 != int(m[1]):
            raise _bad(path, f"expected exactly {m[1]} bytes")
    else:
        raise _bad(path, f"unknown type {kind}")


def _check_struct(types: dict[str, Any], name: str, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(path, f"expected an object of type {name}")
    for field in types[name]:
        if field["name"] not in value:
            raise _bad(f"{path}.{field['name']}", "missing")
        _check_value(types, field["type"], value[field["name"]], f"{path}.{field['name']}")


def validate_typed_data(data: Any, root: str = "typedData") -> None:
    """Raise BAD_USER_INPUT naming the first bad path (e.g. ``typedData.message.to.wallet``)."""
    if not isinstance(data, dict):
        raise _bad(root, "expected an object with types, primaryType, domain and message")
    for key, kind in (("types", dict), ("primaryType", str), ("domain", dict), ("message", dict)):
        if not isinstance(data.get(key), kind):
            raise _bad(f"{root}.{key}", f"expected {'an object' if kind is dict else 'a string'}")
    types: dict[str, Any] = data["types"]
    for name, fields in types.items():
        if not isinstance(fields, list):
            raise _bad(f"{root}.types.{name}", "expected a list of {name, type}")
        for i, field in enumerate(fields):
            ok = isinstance(field, dict) and isinstance(field.get("name"), str)
            if not ok or not isinstance(field.get("type"), str):
                raise _bad(f"{root}.types.{name}[{i}]", "expected {name, type}")
    if data["primaryType"] not in types:
        raise _bad(f"{root}.primaryType", f"{data['primaryType']!r} is not in types")
    domain_types = types.get("EIP712Domain")
    if domain_types is None:
        # Derive the domain type from the fields present, as wallets do.
        types = {**types, "EIP712Domain": [
            {"name": k, "type": t} for k, t in _DOMAIN_FIELDS.items() if k in data["domain"]
        ]}  # fmt: skip
        data["types"] = types
    _check_struct(types, "EIP712Domain", data["domain"], f"{root}.domain")
    _check_struct(types, data["primaryType"], data["message"], f"{root}.message")
