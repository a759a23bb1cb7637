"""HTTP over a bare socket, for requests a polite client cannot send: bodies the server
refuses halfway, headers dribbled out byte by byte."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any


async def _send(writer: asyncio.StreamWriter, head: bytes, chunks: AsyncIterator[bytes]) -> None:
    # The server may answer and close before the body is sent: that is the point.
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        async for chunk in chunks:
            writer.write(chunk)
            await writer.drain()


async def request(
    port: int,
    head: bytes,
    chunks: AsyncIterator[bytes],
    timeout: float = 60,
    source: str = "127.0.0.1",
) -> tuple[int, Any]:
    """Send ``head`` and the body chunks while reading; the status and the JSON body.
    ``source`` is the local address to connect from (any 127.0.0.x is loopback)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    sender = asyncio.create_task(_send(writer, head, chunks))
    try:
        async with asyncio.timeout(timeout):
            raw = b""
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(65536):
                    raw += chunk
                    if _complete(raw):
                        break
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    head_part, _, body = raw.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1]) if head_part else 0
    # One response only: bytes after its Content-Length belong to whatever the server said
    # next on the same connection (the unread rest of a refused body, parsed as a request).
    if (length := _content_length(head_part)) is not None:
        body = body[:length]
    if body[:1] in (b"{", b"["):
        return status, json.loads(body)
    return status, body.decode(errors="replace") or None


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    length = _content_length(head) if sep else None
    return length is not None and len(body) >= length


def post_head(
    path: str, *, content_length: int | None = None, expect_continue: bool = False
) -> bytes:
    expect = "expect: 100-continue\r\n" if expect_continue else ""
    length = (
        f"content-length: {content_length}\r\n"
        if content_length is not None
        else "transfer-encoding: chunked\r\n"
    )
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{length}{expect}\r\n"
    ).encode()


async def chunked(pieces: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(pieces):
        yield b"%x\r\n" % size + b" " * size + b"\r\n"


async def plain(pieces: int, size: int, fill: bytes = b" ") -> AsyncIterator[bytes]:
    piece = (fill * (size // max(len(fill), 1) + 1))[:size]
    for _ in range(pieces):
        yield piece
