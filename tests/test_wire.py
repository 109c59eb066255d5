"""erasure.wire against raw servers on loopback sockets: framing, keep-alive, failures.

Each server writes bytes by hand, so that every way an answer can be framed
(a length, chunks, the end of the connection) and every way it can go wrong
(nothing, half, garbage, too late) is met for real.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Callable

import httpx
import pytest

from erasure.wire import Reply, Wire
from tests.raw_http import Handler, read_request, serve

pytestmark = pytest.mark.anyio

JSON = "application/json"
HEADERS = {JSON: [(b"Content-Type", b"application/json"), (b"Authorization", b"Bearer t")]}


def wire(port: int, *, read_s: float = 5.0, keepalive_s: float = 4.0, pool: int = 4) -> Wire:
    return Wire(
        httpx.URL(f"http://127.0.0.1:{port}/api/v1.1/profiles/delete"),
        HEADERS,
        ssl_context=None,
        connect_s=2.0,
        read_s=read_s,
        pool_s=2.0,
        keepalive_s=keepalive_s,
        pool=pool,
    )


def answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    lines = [b"HTTP/1.1 " + status, b"Content-Type: application/json", *extra]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def replying(*replies: bytes, close_after: bool = False) -> tuple[Handler, list[bytes]]:
    """A handler that answers each request on a connection with the next reply."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            await read_request(reader, seen)
            writer.write(reply)
            await writer.drain()
        if close_after:
            return
        await asyncio.sleep(3600)

    return handle, seen


async def test_the_request_is_one_well_formed_post() -> None:
    handle, seen = replying(answer(b'{"error":0}'))
    async with serve(handle) as srv:
        w = wire(srv.port)
        reply = await w.post(b'{"a":1}', JSON)
        await w.aclose()
    assert reply == Reply(200, "application/json", None, b'{"error":0}')
    head, body = seen[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v1.1/profiles/delete HTTP/1.1"
    assert f"Host: 127.0.0.1:{srv.port}".encode() in lines
    assert b"Content-Length: 7" in lines
    assert b"Authorization: Bearer t" in lines
    assert b"Connection: keep-alive" in lines
    assert body == b'{"a":1}'


async def test_a_connection_is_kept_and_reused() -> None:
    handle, seen = replying(*[answer(b"{}")] * 5)
    async with serve(handle) as srv:
        w = wire(srv.port)
        for _ in range(5):
            assert (await w.post(b"{}", JSON)).status == 200
        await w.aclose()
    assert srv.connections == 1
    assert len(seen) == 5


async def test_chunked_answers_are_joined() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"err\r\n7\r\nor":0}\n\r\n0\r\n\r\n'
    )
    handle, _ = replying(chunked, chunked)
    async with serve(handle) as srv:
        w = wire(srv.port)
        first = await w.post(b"{}", JSON)
        second = await w.post(b"{}", JSON)
        await w.aclose()
    assert first.content == second.content == b'{"error":0}\n'
    assert srv.connections == 1


async def test_an_answer_without_a_length_ends_with_the_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n<html>proxy</html>")
        await writer.drain()

    async with serve(handle) as srv:
        w = wire(srv.port)
        reply = await w.post(b"{}", JSON)
        again = await w.post(b"{}", JSON)  # a new connection: the first one ended
        await w.aclose()
    assert (reply.status, reply.content) == (502, b"<html>proxy</html>")
    assert again.status == 502
    assert srv.connections == 2


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
    ],
)
async def test_compressed_answers_are_inflated(
    encoding: bytes, pack: Callable[[bytes], bytes]
) -> None:
    handle, _ = replying(answer(pack(b'{"error":0}'), b"Content-Encoding: " + encoding))
    async with serve(handle) as srv:
        w = wire(srv.port)
        reply = await w.post(b"{}", JSON)
        await w.aclose()
    assert reply.content == b'{"error":0}'


async def test_retry_after_and_an_interim_answer() -> None:
    handle, _ = replying(
        b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"{}", b"Retry-After: 7", status=b"429 Slow")
    )
    async with serve(handle) as srv:
        w = wire(srv.port)
        reply = await w.post(b"{}", JSON)
        await w.aclose()
    assert (reply.status, reply.retry_after) == (429, "7")


async def test_connection_close_is_honoured() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", b"Connection: close"))
        await writer.drain()
        await asyncio.sleep(3600)  # the client must not wait for the server to hang up

    async with serve(handle) as srv:
        w = wire(srv.port)
        await w.post(b"{}", JSON)
        await asyncio.wait_for(w.post(b"{}", JSON), 2)
        await w.aclose()
    assert srv.connections == 2


async def test_an_idle_connection_the_server_dropped_is_not_reused() -> None:
    handle, _ = replying(answer(b"{}"), close_after=True)
    async with serve(handle) as srv:
        w = wire(srv.port)
        await w.post(b"{}", JSON)
        await asyncio.sleep(0.2)  # the server hangs up meanwhile
        assert (await w.post(b"{}", JSON)).status == 200
        await w.aclose()
    assert srv.connections == 2


async def test_an_idle_connection_past_keepalive_is_not_reused() -> None:
    handle, _ = replying(*[answer(b"{}")] * 3)
    async with serve(handle) as srv:
        w = wire(srv.port, keepalive_s=0.05)
        await w.post(b"{}", JSON)
        await asyncio.sleep(0.15)
        await w.post(b"{}", JSON)
        await w.aclose()
    assert srv.connections == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"", "without answering"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"error"', "middle of an answer"),
        (
            b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 50\r\n\r\n{"error"',
            "middle of an answer",
        ),
        (b'HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\n{"error"', "middle of an answer"),
        (b"SMTP ready\r\n\r\n", "malformed"),
    ],
)
async def test_a_broken_answer_is_a_remote_protocol_error(reply: bytes, message: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with serve(handle) as srv:
        w = wire(srv.port)
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await w.post(b"{}", JSON)
        await w.aclose()


async def test_a_late_answer_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.5)
        writer.write(answer(b"{}"))
        await writer.drain()
        await read_request(reader)  # a reused connection would bring the next request here

    async with serve(handle) as srv:
        w = wire(srv.port, read_s=0.1)
        with pytest.raises(httpx.ReadTimeout):
            await w.post(b"{}", JSON)
        await asyncio.sleep(0.6)  # the late answer arrives on a closed connection, unread
        with pytest.raises(httpx.ReadTimeout):
            await w.post(b"{}", JSON)
        await w.aclose()
    assert srv.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serve(replying()[0]) as srv:
        port = srv.port
    w = wire(port)  # the server is gone: nothing listens there now
    with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
        await w.post(b"{}", JSON)
    await w.aclose()


async def test_the_pool_bounds_requests_in_flight() -> None:
    in_flight = peak = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        while True:
            await read_request(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            writer.write(answer(b"{}"))
            await writer.drain()

    async with serve(handle) as srv:
        w = wire(srv.port, pool=3)
        replies = await asyncio.gather(*(w.post(b"{}", JSON) for _ in range(20)))
        await w.aclose()
    assert all(r.status == 200 for r in replies)
    assert peak <= 3
    assert srv.connections <= 3


async def test_a_cancelled_request_drops_its_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.3)
            writer.write(answer(b"{}"))
            await writer.drain()

    async with serve(handle) as srv:
        w = wire(srv.port)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(w.post(b"{}", JSON), 0.05)
        # the old connection's answer must never be taken for this request's
        reply = await w.post(b'{"second":1}', JSON)
        await w.aclose()
    assert reply.status == 200
    assert srv.connections == 2


async def test_aclose_closes_every_connection() -> None:
    handle, _ = replying(*[answer(b"{}")] * 3)
    async with serve(handle) as srv:
        w = wire(srv.port)
        await asyncio.gather(*(w.post(b"{}", JSON) for _ in range(3)))
        conns = list(w._all)
        await w.aclose()
    assert conns
    assert all(c.closed for c in conns)
