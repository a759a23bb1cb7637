"""EIP-712 typed data: structural checks that name the bad field's path before signing."""

from __future__ import annotations

import re
from typing import Any

from services.errors import BadUserInput
from services.json_limits import check_value_depth

# Real documents (Permit2, Seaport) have about ten types; these bound the work per request.
MAX_TYPES = 100
MAX_FIELDS = 1000

# A path is built only when an error names it: (parent, part) links cost O(1) per value,
# where formatting "a.b.c" strings at every level made validation quadratic in the depth.
Path = tuple[Any, str] | str


def _render(path: Path) -> str:
    parts: list[str] = []
    while isinstance(path, tuple):
        path, part = path
        parts.append(part)
    return path + "".join(reversed(parts))


_INT = re.compile(r"(u?)int([0-9]{0,3})")
# Decimal or 0x-hex, ASCII digits only, at most 256 bits' worth.
_INT_TEXT = re.compile(r"-?(?:0[xX][0-9a-fA-F]{1,64}|[0-9]{1,78})")
_BYTES = re.compile(r"bytes([0-9]{1,2})")
_ARRAY = re.compile(r"(.+)\[([0-9]{0,6})\]", re.S)
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DOMAIN_FIELDS = {
    "name": "string",
    "version": "string",
    "chainId": "uint256",
    "verifyingContract": "address",
    "salt": "bytes32",
}


def _bad(path: Path, message: str) -> BadUserInput:
    rendered = _render(path)
    return BadUserInput(f"{rendered}: {message}", field=rendered)


def _check_int(value: Any, kind: str, bits: int, path: Path) -> None:
    if isinstance(value, bool):
        raise _bad(path, f"expected {kind}, got a boolean")
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            raise _bad(path, f"expected {kind} as a number or numeric string")
        value = int(value, 0) if "x" in value.lower() else int(value)
    if not isinstance(value, int):
        raise _bad(path, f"expected {kind}")
    signed = not kind.startswith("u")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= value <= high:
        raise _bad(path, f"{value} is out of range for {kind}")


def _check_value(types: dict[str, Any], kind: str, value: Any, path: Path) -> None:
    if m := _ARRAY.fullmatch(kind):
        if not isinstance(value, list):
            raise _bad(path, f"expected an array of {m[1]}")
        if m[2] and len(value) != int(m[2]):
            raise _bad(path, f"expected exactly {m[2]} items")
        for i, item in enumerate(value):
            _check_value(types, m[1], item, (path, f"[{i}]"))
    elif kind in types:
        _check_struct(types, kind, value, path)
    elif m := _INT.fullmatch(kind):
        bits = int(m[2] or 256)
        if bits % 8 or not 8 <= bits <= 256:
            raise _bad(path, f"unknown type {kind}")
        _check_int(value, kind, bits, path)
    elif kind == "address":
        if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
            raise _bad(path, "expected a 20-byte 0x-hex address")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _bad(path, "expected true or false")
    elif kind == "string":
        if not isinstance(value, str):
            raise _bad(path, "expected a string")
    elif kind == "bytes" or (m := _BYTES.fullmatch(kind)):
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise _bad(path, "expected 0x-hex bytes of even length")
        if kind != "bytes" and m and (len(value) - 2) // 2 != int(m[1]):
            raise _bad(path, f"expected exactly {m[1]} bytes")
    else:
        raise _bad(path, f"unknown type {kind}")


def _check_struct(types: dict[str, Any], name: str, value: Any, path: Path) -> None:
    if not isinstance(value, dict):
        raise _bad(path, f"expected an object of type {name}")
    for field in types[name]:
        inner = (path, "." + field["name"])
        if field["name"] not in value:
            raise _bad(inner, "missing")
        _check_value(types, field["type"], value[field["name"]], inner)


def validate_typed_data(data: Any, root: str = "typedData") -> None:
    """Raise BAD_USER_INPUT naming the first bad path (e.g. ``typedData.message.to.wallet``)."""
    if not isinstance(data, dict):
        raise _bad(root, "expected an object with types, primaryType, domain and message")
    for key, kind in (("types", dict), ("primaryType", str), ("domain", dict), ("message", dict)):
        if not isinstance(data.get(key), kind):
            raise _bad(f"{root}.{key}", f"expected {'an object' if kind is dict else 'a string'}")
    check_value_depth(data, field=root)
    types: dict[str, Any] = data["types"]
    if len(types) > MAX_TYPES:
        raise _bad(f"{root}.types", f"at most {MAX_TYPES} types")
    if sum(len(fields) for fields in types.values() if isinstance(fields, list)) > MAX_FIELDS:
        raise _bad(f"{root}.types", f"at most {MAX_FIELDS} fields in all")
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
