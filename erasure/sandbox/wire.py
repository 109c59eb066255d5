"""HTTP/1.1 on the sandbox's raw front, byte by byte: heads in, answers out, two ways to hang up.

Pure helpers of :mod:`erasure.sandbox.front`: parse a request head, write an
answer's head (folded, or with bare line feeds, on demand), close with RST
or with a FIN that drains what still arrives, and make a gzip bomb.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import zlib
from functools import cache
from typing import Any

from erasure.sandbox.asgi import Headers

__all__ = ["gzip_bomb", "half_close", "head_bytes", "parse_head", "reset", "write_answer"]

LINGER_S = 2.0  # seconds a half-closed connection is drained before it is closed
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    402: b"Payment Required",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    411: b"Length Required",
    413: b"Content Too Large",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}


def reset(transport: asyncio.Transport) -> None:
    """Close with RST: SO_LINGER on with a zero timeout, then abort."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Drain(asyncio.Protocol):
    """Throws away what the peer still sends, and closes at its EOF."""

    def eof_received(self) -> bool | None:
        return None  # the transport closes


def half_close(transport: asyncio.Transport) -> None:
    """Close with FIN while draining what arrives, so that the kernel sends no RST.

    Closing a socket whose unread data is still queued sends RST on Linux;
    nginx's "lingering close" reads and drops it for a while instead.
    """
    transport.set_protocol(_Drain())
    if transport.can_write_eof():
        transport.write_eof()
    asyncio.get_running_loop().call_later(LINGER_S, transport.close)


def parse_head(head: bytes) -> tuple[bytes, bytes, Headers, bool] | None:
    """(method, target, lower-cased headers, close after the answer), or None."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        headers.append((name.lower(), value.strip()))
    connection = b",".join(v for n, v in headers if n == b"connection").lower()
    close = parts[2] == b"HTTP/1.0" or b"close" in connection
    return parts[0], parts[1], headers, close


def head_bytes(
    status: int,
    headers: Headers,
    length: int,
    close: bool,
    *,
    eol: bytes = b"\r\n",
    fold: bool = False,
) -> bytes:
    """The status line and headers of an answer (folded, or with other line ends)."""
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Unknown"))]
    for name, value in headers:
        if fold and name == b"content-type":
            # obs-fold: the value goes on, after a line break, on a line starting with
            # white space; unfolded it reads "type; charset=utf-8" as before.
            media = value.split(b";", 1)[0]
            lines.append(name + b": " + media + b";\r\n charset=utf-8")
        else:
            lines.append(name + b": " + value)
    if fold:
        lines.append(b"cache-control: no-store,\r\n\tno-cache")
    lines.append(b"content-length: %d" % length)
    if close:
        lines.append(b"connection: close")
    return eol.join(lines) + eol + eol


def write_answer(
    transport: asyncio.Transport,
    status: int,
    headers: Headers,
    body: bytes,
    *,
    close: bool = False,
) -> None:
    transport.write(head_bytes(status, headers, len(body), close) + body)


@cache
def _bomb_start(size: int) -> tuple[Any, bytes]:
    """A gzip compressor fed ``size`` spaces, and what it wrote; computed once per size.

    About 0.3 s for 100 MiB, paid at the first bomb.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    chunk = b" " * (1 << 20)
    out = [compressor.compress(chunk) for _ in range(size >> 20)]
    out.append(compressor.compress(b" " * (size & ((1 << 20) - 1))))
    return compressor, b"".join(out)


def gzip_bomb(answer: bytes, size: int) -> bytes:
    """gzip of ``size`` spaces then ``answer``: valid JSON or XML once inflated."""
    start, prefix = _bomb_start(size)
    compressor = start.copy()  # the shared start stays untouched
    return prefix + bytes(compressor.compress(answer)) + bytes(compressor.flush())
