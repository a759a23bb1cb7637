"""Start-up problems an operator fixes: one line each, never a traceback or a secret."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from walletql.settings import Settings


class StartupError(Exception):
    """A process cannot start; the message is one line for the operator."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``.env``); bad values raise ``StartupError``."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise StartupError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """``invalid settings: WALLETQL_X: why; …`` from the errors' locations and messages only
    (never their inputs: a rejected database URL still carries its password)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if loc:
            name = f"WALLETQL_{loc[0].upper()}" + "".join(f"[{part}]" for part in loc[1:])
            problems.append(f"{name}: {message}")
        else:
            problems.append(message)
    return "invalid settings: " + "; ".join(problems)
