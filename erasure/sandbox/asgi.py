"""The few ASGI moves the sandbox needs, by hand: read a body, answer, hang up.

Types are the ASGI spec's, loosely: scopes and messages are plain mappings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from erasure.sandbox.protocol import MAX_BODY

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body; None when larger than MAX_BODY."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def respond(
    send: Send, status: int, content_type: bytes, body: bytes, extra: Headers | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def drop(receive: Receive, send: Send) -> None:
    """Close the connection without an answer.

    ASGI cannot say this, so the transport is taken from uvicorn's protocol
    cycle (``send`` is its bound method, under both httptools and h11); then
    wait for the disconnect, so that uvicorn does not answer 500 itself.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's HTTP protocols")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
