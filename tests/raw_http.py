"""Raw HTTP servers on loopback sockets for the client's and the transport's tests.

Each test writes its server's bytes by hand, so that every framing and every
failure of an answer is met for real, on a real socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    port: int
    connections: int = 0  # accepted so far


@asynccontextmanager
async def serve(handle: Handler, ctx: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
    """An asyncio server on 127.0.0.1 running ``handle`` per connection.

    A handler that ends closes its connection; one still running at the end
    is cancelled. A client hanging up is not an error.
    """
    tasks: set[asyncio.Task[Any]] = set()
    info = RawServer(port=0)

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0, ssl=ctx)
    info.port = server.sockets[0].getsockname()[1]
    try:
        yield info
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader, into: list[bytes] | None = None) -> bytes:
    """One request with a Content-Length body, head and body; kept in ``into`` if given."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    request = head + await reader.readexactly(length)
    if into is not None:
        into.append(request)
    return request
