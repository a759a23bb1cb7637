"""How every floor app in bench/ is served: uvicorn as ``walletql serve`` runs it
(walletql/server.py): uvloop, httptools, no access log, no server header.

Imports nothing of walletql, so a cold-start floor pays only for what it serves.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal


def serve(app: Any, port: int, lifespan: Literal["on", "off"] = "on") -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_config=None,
        http="httptools",
        server_header=False,
        lifespan=lifespan,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on every platform
        asyncio.run(uvicorn.Server(config).serve())
    else:
        uvloop.run(uvicorn.Server(config).serve())
