"""uvicorn's websocket protocol with a synchronous frame writer in the ASGI scope.

``scope["extensions"]["walletql.send_text_nowait"](text) -> bool`` writes one text frame at
once when the socket can take it, and answers False when it cannot (closed, closing, or its
write buffer above the high-water mark: a client that does not read). The fan-out
(walletql/fanout.py) writes one prepared frame to thousands of sockets in one loop with it;
ASGI ``send`` would need an awaited call per socket, and one that never returns while a
client is stuck. A socket that answers False is served through ASGI ``send`` instead.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request

SEND_TEXT_NOWAIT = "walletql.send_text_nowait"


class FrameWritingWebSocket(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # accepted: the scope exists, the app has not run yet
            extensions: dict[str, object] = self.scope["extensions"]  # type: ignore[assignment]
            extensions[SEND_TEXT_NOWAIT] = self.send_text_nowait

    def send_text_nowait(self, text: str) -> bool:
        """uvicorn's ``websocket.send`` of a text frame, when it would not wait."""
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True
