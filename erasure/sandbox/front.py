"""The raw front: connection faults that uvicorn cannot play, on the real socket.

:class:`Front` is the protocol of every accepted connection (uvicorn's
``http`` setting takes a protocol class). At accept it may hang up (FIN:
a half-close, the request read and thrown away; RST: ``SO_LINGER`` 0 and
an abort). Otherwise it hands the connection over for good, with
``transport.set_protocol``:

- to uvicorn's httptools protocol when no connection fault is switched on
  (the happy path costs one dice check per connection, nothing per request);
- to :class:`RawConnection` when one is: a small HTTP/1.1 server that calls
  the same ASGI app per request and plays, on delete requests only (the
  admin paths stay usable), a 503 before the body is read, an idle
  keep-alive close, and the odd answers: obs-fold, bare-LF, oversize, gzip
  bomb, trickle. Those follow the service's real answer: a found profile is
  erased.

Switching a connection fault on closes uvicorn's idle keep-alive connections
(as a reload does; server.py wires it), so that clients reconnect through the
front.
It reads requests with a ``Content-Length`` body only (``Transfer-Encoding``
is answered 411): what every Altcraft client sends.

The byte-level HTTP/1.1 helpers (heads, answers, RST and FIN) are
:mod:`erasure.sandbox.wire`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from erasure.sandbox.asgi import Headers, Message
from erasure.sandbox.faults import PROXY_PAGES, ConnectionFault
from erasure.sandbox.protocol import MAX_BODY
from erasure.sandbox.wire import gzip_bomb, half_close, head_bytes, parse_head, reset, write_answer

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from erasure.sandbox.app import SandboxApp

DELETE_PATH = b"/api/v1.1/profiles/delete"
MAX_HEAD = 64 * 1024  # bytes of a request's line and headers


class Front(asyncio.Protocol):
    """First protocol of each connection: hang up, or hand over (see the module)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop
        self.sandbox = cast("SandboxApp", config.app)

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's is no subclass of asyncio's
        app = self.sandbox
        settings = app.settings
        fault = app.dice.hangup(settings) if settings.hangups else None
        if fault is ConnectionFault.HANGUP_RST:
            app.stats.fire(fault.value)
            reset(transport)
            return
        if fault is ConnectionFault.HANGUP_FIN:
            app.stats.fire(fault.value)
            half_close(transport)
            return
        inner: asyncio.Protocol
        if settings.connection_faults:
            inner = RawConnection(app, self.server_state)
        else:
            inner = HttpToolsProtocol(
                config=self.config,
                server_state=self.server_state,
                app_state=self.app_state,
                _loop=self.loop,
            )
        transport.set_protocol(inner)
        inner.connection_made(transport)


class RawConnection(asyncio.Protocol):
    """One connection served by hand, with the connection faults (see the module)."""

    def __init__(self, app: SandboxApp, server_state: ServerState) -> None:
        self.app = app
        self.server_state = server_state
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.more = asyncio.Event()  # set when data or EOF arrives
        self.eof = False
        self.disconnected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_was_delete = False  # whether the request served last was a delete

    # asyncio.Protocol

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)
        self.transport = transport
        self.server_state.connections.add(self)  # type: ignore[arg-type]  # shutdown() below
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.more.set()

    def eof_received(self) -> bool | None:
        self.eof = True
        self.more.set()
        return True  # keep the write side open: an answer may still be on its way

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.more.set()
        self.disconnected.set()
        self.server_state.connections.discard(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def shutdown(self) -> None:
        """The server stops (uvicorn calls this): end now, whatever is in flight."""
        if self.transport is not None:
            self.transport.close()

    # Reading

    async def _wait(self, timeout_s: float | None = None) -> bool:
        """Wait for more data or EOF; False on a timeout."""
        self.more.clear()
        if timeout_s is None:
            await self.more.wait()
            return True
        try:
            await asyncio.wait_for(self.more.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _head(self) -> bytes | None:
        """A request's line and headers; None at EOF or when too large."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if self.eof or len(self.buffer) > MAX_HEAD:
                return None
            await self._wait()

    async def _body(self, length: int) -> bytes | None:
        while len(self.buffer) < length:
            if self.eof:
                return None
            await self._wait()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body

    # Serving

    async def serve(self) -> None:
        transport = self.transport
        assert transport is not None
        idle_ms: float | None = None
        try:
            while not transport.is_closing():
                idle = idle_ms is not None and not self.buffer and not self.eof
                if idle and not await self._wait((idle_ms or 0.0) / 1000):
                    self.app.stats.fire(ConnectionFault.IDLE_CLOSE.value)
                    transport.close()  # nothing unread: a FIN
                    return
                head = await self._head()
                if head is None:
                    transport.close()
                    return
                keep_alive = await self._request(transport, head)
                if not keep_alive:
                    return
                settings = self.app.settings
                # Drawn after deletes only, so that admin calls leave the seeded draws alone.
                close_idle = (
                    self.last_was_delete
                    and settings.idle_close
                    and self.app.dice.hit(settings.idle_close)
                )
                idle_ms = settings.idle_close_ms if close_idle else None
        except asyncio.CancelledError:
            transport.close()
        finally:
            # A connection handed to _Drain reports its loss there, not here.
            self.server_state.connections.discard(self)

    async def _request(self, transport: asyncio.Transport, head: bytes) -> bool:
        """Serve one request; whether the connection stays open."""
        request = parse_head(head)
        if request is None:
            write_answer(transport, 400, [], b"")
            transport.close()
            return False
        method, target, headers, close = request
        length = 0
        for name, value in headers:
            if name == b"transfer-encoding":
                write_answer(transport, 411, [], b"")
                half_close(transport)
                return False
            if name == b"content-length":
                length = int(value) if value.strip().isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            write_answer(transport, 413 if length > 0 else 400, [], b"")
            half_close(transport)
            return False
        path, _, query = target.partition(b"?")
        is_delete = self.last_was_delete = path == DELETE_PATH and method == b"POST"
        app, settings = self.app, self.app.settings
        if is_delete and app.dice.hit(settings.early_503):
            app.stats.arrived(time.time(), settings.record_times)
            app.stats.answered(ConnectionFault.EARLY_503.value)
            app.stats.fire(ConnectionFault.EARLY_503.value)
            page = PROXY_PAGES[503]
            write_answer(transport, 503, [(b"content-type", b"text/html")], page, close=True)
            half_close(transport)  # the body stays unread, as a proxy in trouble leaves it
            return False
        body = await self._body(length)
        if body is None:
            transport.close()
            return False
        answer = await self._call(method, path, query, headers, body)
        if answer is None:  # the app dropped the connection itself
            return False
        status, answer_headers, answer_body = answer
        odd = app.dice.odd_answer(settings) if is_delete else None
        if odd is None:
            write_answer(transport, status, answer_headers, answer_body, close=close)
        else:
            app.stats.fire(odd.value)
            await self._odd(transport, odd, status, answer_headers, answer_body, close)
        if close:
            half_close(transport)
            return False
        return not transport.is_closing()

    async def _call(
        self, method: bytes, path: bytes, query: bytes, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes] | None:
        """The ASGI app's answer to one request; None when it closed the connection."""
        cycle = _Cycle(self.transport, body, self.disconnected)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method.decode("latin-1"),
            "scheme": "http",
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
        }
        await self.app(scope, cycle.receive, cycle.send)
        if self.transport is None or self.transport.is_closing() or not cycle.status:
            return None
        return cycle.status, cycle.headers, b"".join(cycle.body)

    async def _odd(
        self,
        transport: asyncio.Transport,
        odd: ConnectionFault,
        status: int,
        headers: Headers,
        body: bytes,
        close: bool,
    ) -> None:
        settings = self.app.settings
        if odd is ConnectionFault.OVERSIZE:
            padding = max(0, settings.oversize_bytes - len(body))
            write_answer(transport, status, headers, body + b" " * padding, close=close)
        elif odd is ConnectionFault.GZIP_BOMB:
            bomb = gzip_bomb(body, settings.gzip_bomb_bytes)
            headers = [*headers, (b"content-encoding", b"gzip")]
            write_answer(transport, status, headers, bomb, close=close)
        elif odd is ConnectionFault.TRICKLE:
            data = head_bytes(status, headers, len(body), close) + body
            pause_s = settings.trickle_s / len(data)
            for i in range(len(data)):
                if transport.is_closing():
                    return
                transport.write(data[i : i + 1])
                await asyncio.sleep(pause_s)
        elif odd is ConnectionFault.OBS_FOLD:
            transport.write(head_bytes(status, headers, len(body), close, fold=True) + body)
        else:
            transport.write(head_bytes(status, headers, len(body), close, eol=b"\n") + body)


class _Cycle:
    """One request's ASGI receive and send; ``transport`` is for asgi.drop()."""

    def __init__(
        self, transport: asyncio.Transport | None, body: bytes, disconnected: asyncio.Event
    ) -> None:
        self.transport = transport
        self._body: bytes | None = body
        self._disconnected = disconnected
        self.status = 0
        self.headers: Headers = []
        self.body: list[bytes] = []

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() != b"content-length"  # written again from the real body
            ]
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))
