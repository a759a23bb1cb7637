"""uvicorn as `walletql serve` runs it, with the connection limits uvicorn lacks.

uvicorn (httptools) waits forever for request headers and accepts any number of sockets
from one address. The protocol classes here add, per connection:

- a header deadline: a request's headers must be complete within ``header_timeout`` of the
  connection opening (or of the previous response), else the socket is closed (slowloris);
  the rest of a body refused unread (413) is discarded within that deadline too;
- a header size cap (431), since httptools buffers header lines without a bound;
- a cap on open connections per client IP (HTTP and websocket alike), answered with 429.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from walletql.frame_writer import FrameWritingWebSocket
from walletql.settings import Settings


@dataclass
class ConnectionLimits:
    header_timeout: float
    max_header_bytes: int
    max_per_ip: int  # 0: no limit
    open_by_ip: Counter[str] = field(default_factory=Counter)

    def admit(self, ip: str | None) -> bool:
        if ip is None or not self.max_per_ip:
            return True
        if self.open_by_ip[ip] >= self.max_per_ip:
            return False
        self.open_by_ip[ip] += 1
        return True

    def release(self, ip: str | None) -> None:
        if ip is None or not self.max_per_ip:
            return
        self.open_by_ip[ip] -= 1
        if self.open_by_ip[ip] <= 0:
            del self.open_by_ip[ip]


def _refusal(status: bytes, code: str) -> bytes:
    body = b'{"errors":[{"message":"%s","extensions":{"code":"%s"}}]}' % (
        status.split(b" ", 1)[1],
        code.encode(),
    )
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(body), body)
    )


TOO_MANY_CONNECTIONS = _refusal(b"429 Too Many Connections", "RATE_LIMITED")
HEADERS_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", "BAD_REQUEST")


def protocol_classes(limits: ConnectionLimits) -> tuple[type[Any], type[Any]]:
    """HTTP and websocket protocol classes that share one set of ``limits``."""

    class GuardedWebSocket(FrameWritingWebSocket):
        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            # Admitted by the HTTP protocol that upgraded; released when the socket goes.
            limits.release(self.client[0] if self.client else None)

    class GuardedHttp(HttpToolsProtocol):
        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._header_bytes = 0
            self._header_deadline: asyncio.TimerHandle | None = None
            self._admitted_ip: str | None = None
            self._upgraded = False
            self._draining = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ip = self.client[0] if self.client else None
            if not limits.admit(ip):
                transport.write(TOO_MANY_CONNECTIONS)
                transport.close()
                return
            self._admitted_ip = ip
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)
            if not self._upgraded:
                limits.release(self._admitted_ip)
                self._admitted_ip = None

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(
                limits.header_timeout, self._headers_too_slow
            )

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # Counted after parsing: a first chunk may carry a body after complete headers.
            if self._header_deadline is not None and not self._draining:
                self._header_bytes += len(data)
                if self._header_bytes > limits.max_header_bytes:
                    self._disarm_header_deadline()
                    self.transport.write(HEADERS_TOO_LARGE)
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def handle_websocket_upgrade(self) -> None:
            self._upgraded = True  # the websocket protocol releases the slot
            super().handle_websocket_upgrade()

        def on_response_complete(self) -> None:
            idle = not self.pipeline  # a pipelined request already has its headers
            unread = self.cycle is not None and self.cycle.more_body
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if unread:
                # Answered before the body ended (413, 408). Closing now, with the body
                # still arriving, would reset the socket and the client would never read
                # the answer; instead the rest is discarded as it comes (uvicorn drops body
                # bytes after a response), within the same deadline as headers.
                self._draining = True
                self._arm_header_deadline()
            elif idle:
                # The next request on a kept-alive socket gets a fresh header deadline.
                self._arm_header_deadline()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self._draining:  # the refused body has ended: back to waiting for headers
                self._draining = False
                self._arm_header_deadline()

    return GuardedHttp, GuardedWebSocket


def uvicorn_config(app: Any, settings: Settings) -> Config:
    limits = ConnectionLimits(
        header_timeout=settings.header_read_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_per_ip=settings.max_connections_per_ip,
    )
    http, ws = protocol_classes(limits)
    return Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        http=http,
        ws=ws,
        ws_max_size=settings.ws_max_message_bytes,
        # permessage-deflate keeps ~40 KiB of compression state per socket; our frames are
        # small JSON, so memory per idle subscription matters more (see bench/fanout.py).
        ws_per_message_deflate=False,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        server_header=False,
        lifespan="on",
    )
