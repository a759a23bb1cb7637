"""Keep Python's default recursion limit while serving.

py_ecc (imported with eth_account) raises the limit to 100,000 and py-evm to 12,288 at
import time. With a raised limit, a deeply nested input makes recursive code (a JSON decoder,
a parser) overflow the C stack and the process dies with SIGSEGV, instead of a RecursionError
that is caught. Inputs are bounded before any recursion (services/json_limits.py), and this
pin is the second line: no import can raise the limit on the request path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

DEFAULT_RECURSION_LIMIT = 1000  # CPython's default

_original: Callable[[int], None] = sys.setrecursionlimit


def _capped(limit: int) -> None:
    _original(min(limit, DEFAULT_RECURSION_LIMIT))


def pin_recursion_limit() -> None:
    """Reset the limit to the default, and make later raises (library imports) no-ops."""
    _original(DEFAULT_RECURSION_LIMIT)
    sys.setrecursionlimit = _capped
