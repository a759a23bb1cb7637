"""Log redaction for every layer: no SQL text, no credentials in URLs, no tracebacks, and no
control characters (each record is one line).

``describe_exception`` makes the one-line form of an error; ``RedactingFilter`` applies it
(and the URL rule) to every record a handler emits, whichever layer logged it. The
composition root installs the filter on the process's handlers (``install_redaction``).
"""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path

# Schemes are case-insensitive; the userinfo runs to its last "@" (a password may hold one).
_URL = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^/?#\s]*@)?(?P<host>[^/\s:?#]+)[^\s'\"]*", re.I
)
# SQLAlchemy appends the statement and its parameters to an error's text.
_SQL_TAIL = re.compile(r"\s*\[SQL: .*", re.S)


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: a request path
# with a decoded newline ("GET /x%0a…") must not start a forged line of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Each control character as a visible escape (``\\x0a``), so a record stays one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else
                        f"\\u{ord(m[0]):04x}", text)  # fmt: skip


def redact(text: str) -> str:
    """Drop what may follow a URL's host (credentials, API keys) and SQLAlchemy's SQL tail."""
    text = _SQL_TAIL.sub("", text)
    return _URL.sub(lambda m: f"{m['scheme']}://{m['host']}/…", text)


def describe_exception(exc: BaseException) -> str:
    """Type, innermost frame and message of an exception: no SQL, no values, no traceback."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause: BaseException = exc.orig
        while cause.__cause__ is not None:  # down to the driver's own error class
            cause = cause.__cause__
        message = f"{type(exc).__name__} from {type(cause).__name__}: {cause}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    # URLs may carry credentials (an RPC provider's API key in the path or query).
    message = redact(message)
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    if ours:
        frame = ours[-1]
        message += f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    return message


class RedactingFilter(logging.Filter):
    """Rewrites each record before it is formatted: the message redacted, an attached
    exception reduced to ``describe_exception`` (its traceback would show SQL and values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {describe_exception(record.exc_info[1])}"
        record.msg, record.args = escape_controls(redact(message)), ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger): records of every
    layer, and of the libraries, pass those handlers. Safe to call more than once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
