"""Log output: plain text lines, or one JSON object per line (``WALLETQL_LOG_FORMAT=json``).

Every line written while an HTTP request runs carries that request's id (and, once known,
its GraphQL operation), so the access line, an INTERNAL error's line and the client's
``extensions.requestId`` can be joined. Redaction (``services/logs.py``) runs first on the
handler, for both formats: no SQL, no credentials in URLs, no tracebacks.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from services.logs import RedactingFilter
from services.request_context import current_request

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields the access log passes as ``extra``; copied into the JSON object when present.
_EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "operation")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = current_request.get()
        if info is not None:
            entry["request_id"] = info.request_id
            if info.operation is not None:
                entry["operation"] = info.operation
        for field in _EXTRA_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler as every walletql process has it: redaction, then the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str, fmt: str = "text") -> None:
    """One handler on the root logger (uvicorn's loggers propagate to it)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(log_handler(fmt))
    root.setLevel(level)
    # Alembic announces each of its plugins and its context at INFO on every start, web3 each
    # disconnect: noise for a user. Alembic's "Running upgrade" lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("web3").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(
        lambda record: not record.getMessage().startswith(("Context impl", "Will assume"))
    )
