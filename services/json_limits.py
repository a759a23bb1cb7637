"""JSON whose nesting depth is checked on the raw text before a recursive decoder sees it.

CPython's JSON decoder recurses once per level; 100,000 levels overflow the C stack when a
library has raised the recursion limit, and raise RecursionError otherwise. So every JSON
document the server parses goes through ``loads_bounded``: a linear scan of the brackets
outside strings, then ``json.loads`` only when the depth is within ``MAX_JSON_DEPTH``.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from services.errors import BadUserInput

MAX_JSON_DEPTH = 64

# A JSON string, or an unterminated one up to the end of the text. Possessive repeats and the
# end-of-text branch keep the scan linear on hostile input (no retry from each inner quote).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonTooDeep(ValueError):
    """Raised by ``check_json_depth``; callers turn it into their protocol's error."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON is nested deeper than {limit} levels")
        self.limit = limit


def bracket_depth(raw: bytes) -> int:
    """The deepest nesting of ``[]{}`` in ``raw`` (strings already removed)."""
    brackets = raw.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_json_depth(data: str | bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise JsonTooDeep when ``data`` nests arrays and objects deeper than ``limit``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the common case: nothing to scan
        return
    if bracket_depth(_JSON_STRING.sub(b"", raw)) > limit:
        raise JsonTooDeep(limit)


def loads_bounded(data: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` after the depth check; raises JsonTooDeep or ValueError."""
    check_json_depth(data, limit)
    return json.loads(data)


def check_value_depth(value: Any, limit: int = MAX_JSON_DEPTH, *, field: str) -> None:
    """Bound the depth of an already decoded value (the JSON scalar), without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise BadUserInput(f"{field} is nested deeper than {limit} levels", field=field)
        stack.extend((child, depth + 1) for child in children)


def parse_json_text(data: str, *, field: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON sent as text inside a GraphQL argument; BAD_USER_INPUT when it is not."""
    try:
        return loads_bounded(data, limit)
    except JsonTooDeep as exc:
        raise BadUserInput(f"{field}: {exc}", field=field) from None
    except ValueError:
        raise BadUserInput(f"{field} is not valid JSON", field=field) from None
