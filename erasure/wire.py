"""A lean HTTP/1.1 keep-alive client for the one request a run repeats.

A run posts the same small request to the same URL hundreds of thousands
of times. aiohttp spends about 200 µs of CPU on each (building its request
and response objects, its timers and its payload writers); this module
spends about 50: the request head is built once, each POST is one
``transport.write``, and the answer is parsed by ``httptools`` (the parser
uvicorn runs on), which handles chunked bodies and keep-alive rules.
``bench/transport.py`` measures both side by side.

What it does: POST to one origin over a pool of keep-alive connections,
plain or TLS (the run's ``ssl.SSLContext``, with SNI), a connect timeout
and a read timeout (from the write to the end of the answer), gzip and
deflate bodies, answers without a length that end with the connection.
What it leaves to aiohttp (:mod:`erasure.client` routes there instead):
proxies. Never: redirects (an answer is an answer), HTTP/2, pipelining.

Failures are raised as httpx's exceptions, so that
:func:`erasure.altcraft.classify_exception` judges them as for any
transport: ``ConnectError``/``ConnectTimeout`` when nothing was sent,
``ReadTimeout``/``RemoteProtocolError`` when the request may have arrived.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httptools
import httpx

__all__ = ["Reply", "Wire"]

_SKIPPED = {b"host", b"content-length", b"transfer-encoding", b"connection"}
_KEPT = {
    b"content-type",
    b"retry-after",
    b"content-encoding",
    b"content-length",  # an answer with a length is cut short if the connection ends first
    b"transfer-encoding",
}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str | None
    retry_after: str | None
    content: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiter: asyncio.Future[Reply] | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._received = False  # a byte of the current answer arrived
        self._until_close = False  # the answer has no length: it ends with the connection

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the stream cannot be trusted
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too: a half-closed connection is of no use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is None:
            return
        if self._until_close:
            self._complete(keep_alive=False)
        elif self._received:
            self._fail(
                httpx.RemoteProtocolError("the connection closed in the middle of an answer")
            )
        else:
            self._fail(
                httpx.RemoteProtocolError("the server closed the connection without answering")
            )

    # ---------------------------------------------------------------- httptools

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _KEPT:
            self._headers[name] = value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._until_close = (
            not 100 <= status < 200
            and status not in (204, 304)
            and not self._parser.should_keep_alive()
            and b"content-length" not in self._headers
            and b"chunked" not in self._headers.get(b"transfer-encoding", b"").lower()
        )

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:  # an interim answer: wait for the real one
            self._reset()
            self._received = True
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    # ---------------------------------------------------------------- helpers

    def _complete(self, *, keep_alive: bool) -> None:
        waiter, headers = self.waiter, self._headers
        content = b"".join(self._body)
        status = self._parser.get_status_code()
        self.waiter = None
        self._until_close = False
        self._reset()
        if not keep_alive:
            self.close()
        if waiter is None or waiter.done():
            return
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding in (b"gzip", b"deflate"):
            try:
                content = _inflate(content, encoding)
            except zlib.error:
                waiter.set_exception(
                    httpx.DecodingError(f"the answer's {encoding.decode()} body cannot be decoded")
                )
                return
        waiter.set_result(
            Reply(
                status=status,
                content_type=_text(headers.get(b"content-type")),
                retry_after=_text(headers.get(b"retry-after")),
                content=content,
            )
        )

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _inflate(content: bytes, encoding: bytes) -> bytes:
    if encoding == b"gzip":
        return zlib.decompress(content, 16 + zlib.MAX_WBITS)
    try:
        return zlib.decompress(content)  # deflate as the RFC means it: zlib-wrapped
    except zlib.error:
        return zlib.decompress(content, -zlib.MAX_WBITS)  # and as some servers send it: raw


def _expire(waiter: asyncio.Future[Reply], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout(f"no answer within {seconds:g} s"))


class Wire:
    """POSTs to one URL over keep-alive connections. Use inside one event loop.

    Args:
        url: the endpoint (``http`` or ``https``).
        headers: per kind of body (its content type), the header lines sent
            with it; ``Host``, ``Content-Length`` and ``Connection:
            keep-alive`` are set here.
        ssl_context: for ``https``.
        connect_s, read_s, pool_s: the connect timeout; the time from sending
            a request to the end of its answer; the wait for a free connection.
        keepalive_s: an idle connection older than this is closed, not reused
            (servers commonly drop idle connections after 5 s).
        pool: connections at most; one per worker is all a run needs.
    """

    def __init__(
        self,
        url: httpx.URL,
        headers: Mapping[str, Iterable[tuple[bytes, bytes]]],
        *,
        ssl_context: ssl.SSLContext | None,
        connect_s: float,
        read_s: float,
        pool_s: float,
        keepalive_s: float,
        pool: int,
    ) -> None:
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot send to {url.scheme}:// URLs")
        self._host = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl_context if url.scheme == "https" else None
        self._connect_s = connect_s
        self._read_s = read_s
        self._keepalive_s = keepalive_s
        self._pool = pool
        self._pool_s = pool_s
        self._slots = asyncio.Semaphore(pool)
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        start = [b"POST " + url.raw_path + b" HTTP/1.1", b"Host: " + url.netloc]
        self._heads = {
            kind: b"\r\n".join(
                start
                + [n + b": " + v for n, v in lines if n.lower() not in _SKIPPED]
                + [b"Connection: keep-alive", b"Content-Length: "]
            )
            for kind, lines in headers.items()
        }

    async def post(self, body: bytes, kind: str) -> Reply:
        """Send ``body`` with the headers of ``kind``; the answer, whatever its status."""
        head = self._heads[kind]
        if self._slots.locked():  # as many requests in flight as the pool holds: wait
            try:
                await asyncio.wait_for(self._slots.acquire(), self._pool_s)
            except TimeoutError:
                raise httpx.PoolTimeout(f"no connection free within {self._pool_s:g} s") from None
        else:
            await self._slots.acquire()
        try:
            return await self._post(head, body)
        finally:
            self._slots.release()

    async def _post(self, head: bytes, body: bytes) -> Reply:
        conn = self._reuse() or await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Reply] = loop.create_future()
        conn.waiter = waiter
        assert conn.transport is not None
        conn.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        timer = loop.call_later(self._read_s, _expire, waiter, self._read_s)
        try:
            reply = await waiter
        except BaseException:  # a timeout, a failure, or a cancelled run: the state is unknown
            conn.waiter = None
            conn.close()
            self._all.discard(conn)
            raise
        finally:
            timer.cancel()
        if conn.closed:
            self._all.discard(conn)
        elif len(self._idle) < self._pool:
            conn.idle_since = loop.time()
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        return reply

    def _reuse(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()  # the most recent: the least likely to be dropped
            transport = conn.transport
            if (
                conn.closed
                or transport is None
                or transport.is_closing()
                or now - conn.idle_since > self._keepalive_s
            ):
                conn.close()
                self._all.discard(conn)
                continue
            return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                self._connect_s,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {where} within {self._connect_s:g} s"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS and certificate failures
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise httpx.ConnectError(f"cannot connect to {where}: {reason}") from exc
        conn.transport = transport  # uvloop calls connection_made a moment later
        self._all.add(conn)
        return conn

    async def aclose(self) -> None:
        """Close every connection (requests still waiting fail) and wait until they are."""
        conns = list(self._all)
        self._all.clear()
        self._idle.clear()
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.wait([c.lost for c in conns], timeout=1.0)
