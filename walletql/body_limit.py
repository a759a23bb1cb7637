"""Request bodies: at most ``max_bytes``, read within ``timeout`` seconds, or refused.

A declared Content-Length above the cap is refused before a byte is read (413); a chunked
body is counted as it arrives and refused as soon as it passes the cap. A client that sends
its body too slowly gets 408. The rest of the body is never handed to the app.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from walletql.rejections import RequestRejected, error_response


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    def _too_large(self) -> RequestRejected:
        return RequestRejected(
            413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        received, body_done, started = 0, False, False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body: http.disconnect, awaited by streaming responses
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestRejected(
                    408, "REQUEST_TIMEOUT", f"The request body was not sent within {self.timeout} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except RequestRejected as exc:
            if started:
                raise
            await self._refuse(exc, scope, receive, send)

    async def _refuse(
        self, exc: RequestRejected, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await error_response(exc.status_code, exc.code, exc.reason)(scope, receive, send)
