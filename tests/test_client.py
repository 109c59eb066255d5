"""The HTTP client: the request it sends, and every way a real server misbehaves.

Unit tests inject ``httpx.MockTransport`` at ``make_client(..., transport=)``;
the rest meet raw loopback servers (:mod:`tests.raw_http`) through the
default transport, the one production uses.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import anyio
import httpx
import pytest

from erasure import job as jobfile
from erasure.altcraft import (
    MAX_BODY,
    Abort,
    Answer,
    DeleteRequest,
    Erased,
    Retry,
    classify,
    classify_exception,
    encode,
)
from erasure.client import describe, make_client, proxy_for, send
from erasure.errors import ConfigError
from erasure.job import Codes, Job
from erasure.transport import NOT_SENT, Stage, TransportFailure, Unforeseen, UnusableURL
from tests.raw_http import (
    SUCCESS,
    Certificate,
    Handler,
    free_port,
    make_certificate,
    read_request,
    reset,
    response,
    serve,
)

TOKEN = "sandbox-token"
REQ = DeleteRequest(1, "email", "user1@example.com", resource_id=24)


@pytest.fixture
def make_job(write_job: Callable[..., Path]) -> Callable[..., Job]:
    def make(**api: Any) -> Job:
        run = api.pop("run", {})
        return jobfile.load(write_job(api={"base_url": "http://127.0.0.1:9", **api}, run=run))

    return make


def _mock(
    seen: list[httpx.Request], status: int = 200, body: bytes = SUCCESS, **headers: str
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handler)


async def _verdict(job: Job) -> Any:
    """One delete through the default transport, judged as the runner judges it."""
    async with make_client(job, TOKEN) as client:
        try:
            answer = await send(client, REQ, TOKEN, job.api.format)
        except TransportFailure as exc:
            return classify_exception(exc)
    return classify(answer, Codes())


# ---------------------------------------------------------------- the request


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_request_shape(make_job: Callable[..., Job], fmt: str) -> None:
    seen: list[httpx.Request] = []
    job = make_job(base_url="http://127.0.0.1:9/altcraft", format=fmt, timeout_s=7)
    async with make_client(job, TOKEN, transport=_mock(seen)) as client:
        answer = await send(client, REQ, TOKEN, job.api.format)
    assert answer == Answer(200, 0, "Successful operation", "p1", None)
    (request,) = seen
    ctype = f"application/{fmt}"
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:9/altcraft/api/v1.1/profiles/delete"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == ctype
    assert request.headers["accept"] == ctype
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["user-agent"].startswith("erasure")
    assert "cookie" not in request.headers
    assert request.content == encode(REQ, TOKEN, job.api.format)[0]
    # the pool wait and the connect end first; the whole exchange within 7 s (send's deadline)
    assert request.extensions["timeout"] == {
        "connect": 6.3,
        "read": None,
        "write": None,
        "pool": 6.3,
    }


@pytest.mark.anyio
async def test_the_format_of_the_call_wins(make_job: Callable[..., Job]) -> None:
    seen: list[httpx.Request] = []
    async with make_client(make_job(format="json"), TOKEN, transport=_mock(seen)) as client:
        await send(client, REQ, TOKEN, "xml")
    assert seen[0].headers["content-type"] == "application/xml"
    assert seen[0].content.startswith(b"<xml><token>")


@pytest.mark.anyio
async def test_any_status_is_decoded(make_job: Callable[..., Job]) -> None:
    seen: list[httpx.Request] = []
    transport = _mock(
        seen, 429, b"<xml><error>429</error><error_text>Slow down</error_text></xml>",
        **{"Retry-After": "3", "Content-Type": "text/html"},
    )  # fmt: skip
    async with make_client(make_job(), TOKEN, transport=transport) as client:
        answer = await send(client, REQ, TOKEN, "json")
    assert answer == Answer(429, 429, "Slow down", None, 3.0)
    assert classify(answer, Codes()) == Retry("http_429", 429, 3.0, False)


@pytest.mark.parametrize("token", ["tok\n", " tok", "tok\x00en", "токен"])
def test_a_token_that_cannot_be_a_header_is_refused(
    make_job: Callable[..., Job], token: str
) -> None:
    with pytest.raises(ConfigError, match="API token"):
        make_client(make_job(), token)


def test_a_missing_ca_bundle_is_a_config_error(
    make_job: Callable[..., Job], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"api\.ca_bundle"):
        make_client(make_job(ca_bundle="nope.pem"), TOKEN)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"api\.ca_bundle"):
        make_client(make_job(ca_bundle="junk.pem"), TOKEN)


# ---------------------------------------------------------------- no exception escapes


@pytest.mark.anyio
@pytest.mark.parametrize(
    "exc", [RuntimeError("boom"), KeyError("x"), httpx.LocalProtocolError("bad header")]
)
async def test_an_unforeseen_exception_is_one_transient_in_doubt_failure(
    make_job: Callable[..., Job], exc: Exception
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with make_client(make_job(), TOKEN, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(Unforeseen) as info:
            await send(client, REQ, TOKEN, "json")
    name = type(exc).__name__
    assert info.value.__cause__ is exc
    words = f"unforeseen {name} in the HTTP client"
    assert classify_exception(info.value) == Retry(
        "unforeseen", None, None, True, unforeseen=name, detail=words, stage=Stage.UNKNOWN
    )
    assert "boom" not in describe(info.value)  # the message may quote anything: not kept


@pytest.mark.anyio
async def test_a_pooled_connection_found_closed_before_writing_is_sent_again(
    make_job: Callable[..., Job],
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:  # as httpx-aiohttp raises it: coarsely mapped, the cause exact
            raise httpx.ConnectTimeout("x") from aiohttp.ClientConnectionResetError(
                "Cannot write to closing transport"
            )
        return httpx.Response(200, content=SUCCESS)

    async with make_client(make_job(), TOKEN, transport=httpx.MockTransport(handler)) as client:
        answer = await send(client, REQ, TOKEN, "json")
    assert classify(answer, Codes()) == Erased("p1")
    assert len(calls) == 2


# Every exception httpx may raise, as a transport raises it: the failure it becomes.
# A class httpx adds fails test_every_httpx_request_error_has_a_stage until placed here.
HTTPX_FAILURES: dict[type[httpx.RequestError], tuple[type[TransportFailure], Stage, bool]] = {
    httpx.RequestError: (TransportFailure, Stage.UNKNOWN, False),
    httpx.TransportError: (TransportFailure, Stage.UNKNOWN, False),
    httpx.NetworkError: (TransportFailure, Stage.UNKNOWN, False),
    httpx.ProtocolError: (TransportFailure, Stage.UNKNOWN, False),
    httpx.TooManyRedirects: (TransportFailure, Stage.UNKNOWN, False),
    httpx.TimeoutException: (TransportFailure, Stage.UNKNOWN, True),
    httpx.PoolTimeout: (TransportFailure, Stage.POOL, True),
    httpx.ConnectTimeout: (TransportFailure, Stage.CONNECT, True),
    httpx.ConnectError: (TransportFailure, Stage.CONNECT, False),
    httpx.ProxyError: (TransportFailure, Stage.CONNECT, False),
    httpx.WriteTimeout: (TransportFailure, Stage.SEND, True),
    httpx.WriteError: (TransportFailure, Stage.SEND, False),
    httpx.ReadTimeout: (TransportFailure, Stage.ANSWER, True),
    httpx.ReadError: (TransportFailure, Stage.ANSWER, False),
    httpx.CloseError: (TransportFailure, Stage.ANSWER, False),
    httpx.RemoteProtocolError: (TransportFailure, Stage.ANSWER, False),
    httpx.DecodingError: (TransportFailure, Stage.ANSWER, False),
    httpx.UnsupportedProtocol: (UnusableURL, Stage.CONNECT, False),
    httpx.LocalProtocolError: (Unforeseen, Stage.UNKNOWN, False),  # a request we built wrongly
}

_KEY = SimpleNamespace(host="h", port=1, ssl=True)  # aiohttp's connection key, for its errors
# aiohttp's exceptions, wrapped as httpx-aiohttp wraps them (coarse class, exact cause).
AIOHTTP_FAILURES: list[tuple[BaseException, Stage, bool]] = [
    (aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "x")), Stage.CONNECT, False),
    (aiohttp.ClientConnectorError(_KEY, ConnectionResetError(104, "x")), Stage.HUNG_UP, False),
    (aiohttp.ClientConnectorError(_KEY, BrokenPipeError(32, "x")), Stage.HUNG_UP, False),
    (aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "x")), Stage.CONNECT, False),
    (aiohttp.ClientProxyConnectionError(_KEY, ConnectionRefusedError()), Stage.CONNECT, False),
    (aiohttp.ClientProxyConnectionError(_KEY, ConnectionResetError()), Stage.HUNG_UP, False),
    (aiohttp.ConnectionTimeoutError("x"), Stage.CONNECT, True),
    (aiohttp.ServerTimeoutError("x"), Stage.ANSWER, True),
    (aiohttp.ServerDisconnectedError(), Stage.ANSWER, False),
    (aiohttp.ClientPayloadError("x"), Stage.ANSWER, False),
    (aiohttp.ClientOSError(104, "x"), Stage.ANSWER, False),
    (aiohttp.ClientConnectionError("x"), Stage.ANSWER, False),
    # from aiohttp's writer before the answer: never sent (and sent again once, then given up)
    (aiohttp.ClientConnectionResetError("x"), Stage.HUNG_UP, False),
    (ConnectionRefusedError(111, "x"), Stage.CONNECT, False),
    (TimeoutError(), Stage.ANSWER, True),
    (OSError(5, "x"), Stage.ANSWER, False),
]


async def _failure(make_job: Callable[..., Job], exc: BaseException) -> TransportFailure:
    """What send raises when the transport raises ``exc`` (each time)."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with make_client(make_job(), TOKEN, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(TransportFailure) as info:
            await send(client, REQ, TOKEN, "json")
    return info.value


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


@pytest.mark.anyio
async def test_every_httpx_request_error_has_a_stage(make_job: Callable[..., Job]) -> None:
    assert set(HTTPX_FAILURES) == _subclasses(httpx.RequestError) | {httpx.RequestError}
    for cls, (kind, stage, timed_out) in HTTPX_FAILURES.items():
        failure = await _failure(make_job, cls("x"))
        assert (type(failure), failure.stage, failure.timed_out) == (kind, stage, timed_out), cls
        assert "x" != str(failure)  # said in our words, never the exception's


@pytest.mark.anyio
@pytest.mark.parametrize(("cause", "stage", "timed_out"), AIOHTTP_FAILURES)
async def test_aiohttp_failures_are_placed_by_class_and_place(
    make_job: Callable[..., Job], cause: BaseException, stage: Stage, timed_out: bool
) -> None:
    wrapped = httpx.ConnectTimeout("coarse")
    wrapped.__cause__ = cause
    failure = await _failure(make_job, wrapped)
    assert type(failure) is not Unforeseen
    assert (failure.stage, failure.timed_out) == (stage, timed_out)
    assert failure.maybe_reached == (stage not in NOT_SENT)


@pytest.mark.anyio
async def test_a_reset_while_reading_the_answer_is_in_doubt_and_not_resent(
    make_job: Callable[..., Job],
) -> None:
    """The same aiohttp class after the answer began: the request left, so in doubt."""
    calls: list[httpx.Request] = []

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            raise httpx.ReadError("x") from aiohttp.ClientConnectionResetError("x")
            yield b""  # pragma: no cover

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, stream=Broken())

    async with make_client(make_job(), TOKEN, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(TransportFailure) as info:
            await send(client, REQ, TOKEN, "json")
    assert (info.value.stage, info.value.maybe_reached, len(calls)) == (Stage.ANSWER, True, 1)


# ---------------------------------------------------------------- real sockets


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(response())
        await writer.drain()


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_request_on_the_wire(make_job: Callable[..., Job], fmt: str) -> None:
    requests: list[bytes] = []

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, requests)
        writer.write(response())
        await writer.drain()

    async with serve(capture) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}/altcraft", format=fmt)
        assert await _verdict(job) == Erased("p1")
    (request,) = requests
    head, body = request.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"POST /altcraft/api/v1.1/profiles/delete HTTP/1.1"
    headers = dict(_header_lines(head))
    ctype = f"application/{fmt}".encode()
    assert headers[b"host"] == f"127.0.0.1:{srv.port}".encode()
    assert headers[b"authorization"] == f"Bearer {TOKEN}".encode()
    assert headers[b"content-type"] == ctype
    assert headers[b"accept"] == ctype
    assert headers[b"user-agent"].startswith(b"erasure")
    assert b"cookie" not in headers
    assert body == encode(REQ, TOKEN, fmt)[0]  # type: ignore[arg-type]


def _header_lines(head: bytes) -> Iterator[tuple[bytes, bytes]]:
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            yield name.strip().lower(), value.strip()


async def _fin_at_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass  # the server closes at once: a FIN


async def _rst_at_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def _close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)


async def _reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    reset(writer)


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


async def _cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"err')
    await writer.drain()


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A byte every 50 ms, for ever: each read is quick, the answer never ends."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.05)


async def _slow_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The status line, then a header byte every 50 ms: the head never ends."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.05)


def _disconnected(words: str) -> Retry:
    return Retry("disconnected", None, None, True, detail=words, stage=Stage.ANSWER)


_CLOSED = "the server closed the connection before answering"
_TIMEOUT = "no complete answer within 0.5 s (api.timeout_s)"
_TIMED_OUT = Retry("read_timeout", None, None, True, detail=_TIMEOUT, stage=Stage.ANSWER)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "verdict"),
    [
        (_fin_at_accept, _disconnected(_CLOSED)),
        (_rst_at_accept, _disconnected("the connection was reset by the server")),
        (_close_after_request, _disconnected(_CLOSED)),
        (_reset_after_request, _disconnected("the connection was reset by the server")),
        (_garbage, _disconnected("the answer is not valid HTTP")),
        (_cut_short, _disconnected("the answer was cut short")),
        (_hang, _TIMED_OUT),
        (_trickle, _TIMED_OUT),
        (_slow_head, _TIMED_OUT),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
async def test_a_lost_answer_is_transient_and_in_doubt(
    make_job: Callable[..., Job], handler: Handler, verdict: Retry
) -> None:
    """After the request may have left, every failure is in doubt; none escapes.

    The trickle and the slow head would never end under per-read timeouts:
    only the whole-exchange deadline ends them.
    """
    async with serve(handler) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}", timeout_s=0.5)
        assert await _verdict(job) == verdict


@pytest.mark.anyio
async def test_an_early_503_before_the_body_is_read_is_transient(
    make_job: Callable[..., Job],
) -> None:
    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head only, as a proxy with no upstream does
        page = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
        writer.write(response(page, b"503 Service Unavailable", b"Connection: close",
                              content_type=b"text/html"))  # fmt: skip
        await writer.drain()

    async with serve(early) as srv:
        verdict = await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}"))
    assert verdict == Retry("http_5xx", 503, None, True)


@pytest.mark.anyio
async def test_an_idle_keepalive_connection_closed_by_the_server_is_not_reused(
    make_job: Callable[..., Job],
) -> None:
    closed = anyio.Event()

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response())  # keep-alive, then the server's idle timeout ends it
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async with serve(one_then_close) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}")
        async with make_client(job, TOKEN) as client:
            first = await send(client, REQ, TOKEN, "json")
            await closed.wait()
            await anyio.wait_all_tasks_blocked()  # the client's loop has seen the FIN
            second = await send(client, REQ, TOKEN, "json")
    assert classify(first, Codes()) == classify(second, Codes()) == Erased("p1")
    assert srv.connections == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: %d\n\n%s",
        b"HTTP/1.1 200 OK\r\nX-Note: folded\r\n  on two lines\r\nContent-Length: %d\r\n\r\n%s",
    ],
    ids=["bare-lf", "obs-fold"],
)
async def test_lenient_framing_is_read(make_job: Callable[..., Job], raw: bytes) -> None:
    async def lenient(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw % (len(SUCCESS), SUCCESS))
        await writer.drain()

    async with serve(lenient) as srv:
        assert await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}")) == Erased("p1")


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_answer_is_decoded(make_job: Callable[..., Job], encoding: str) -> None:
    body = gzip.compress(SUCCESS) if encoding == "gzip" else zlib.compress(SUCCESS)

    async def packed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(body, b"200 OK", b"Content-Encoding: " + encoding.encode()))
        await writer.drain()

    async with serve(packed) as srv:
        assert await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}")) == Erased("p1")


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "expected"), [
    (b"200 OK", Retry("no_body", 200, None, True)),
    (b"503 Service Unavailable", Retry("http_5xx", 503, None, True)),
])  # fmt: skip
async def test_a_gzip_bomb_is_not_inflated_whole(
    make_job: Callable[..., Job], status: bytes, expected: Retry
) -> None:
    bomb = gzip.compress(b"0" * (256 << 20), compresslevel=9)  # 256 MiB in ~250 KiB

    async def bombing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(bomb, status, b"Content-Encoding: gzip"))
        await writer.drain()

    async with serve(bombing) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}")
        tracemalloc.start()
        try:
            verdict = await _verdict(job)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert verdict == expected
    assert peak < 16 * MAX_BODY  # a few copies of the 1 MiB cap, never the 256 MiB


@pytest.mark.anyio
async def test_an_oversize_answer_is_not_read_to_its_end(make_job: Callable[..., Job]) -> None:
    """A body announced at 400 MB stops being read past the cap; the server never ends it."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 400000000\r\n\r\n{")
        while True:
            writer.write(b" " * 65536)
            await writer.drain()

    async with serve(endless) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}", timeout_s=60)
        assert await _verdict(job) == Retry("no_body", 200, None, True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (b"200 OK", b"<!DOCTYPE html><html><title>Login</title></html>", b"text/html",
         Abort("wrong_url", None, 200, "an HTML page")),
        (b"404 Not Found", b"<html>nginx</html>", b"text/html",
         Abort("wrong_url", None, 404, None)),
        (b"405 Method Not Allowed", b"", b"text/plain", Abort("wrong_url", None, 405, None)),
        (b"501 Not Implemented", b"", b"text/plain", Abort("wrong_url", None, 501, None)),
        (b"502 Bad Gateway", b"<html>bad gateway</html>", b"text/html",
         Retry("http_5xx", 502, None, True)),
        (b"504 Gateway Timeout", b"<html>timeout</html>", b"text/html",
         Retry("http_5xx", 504, None, True)),
    ],
)  # fmt: skip
async def test_an_answer_that_cannot_be_the_api(
    make_job: Callable[..., Job], status: bytes, body: bytes, content_type: bytes, expected: Any
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(body, status, content_type=content_type))
        await writer.drain()

    async with serve(answer) as srv:
        assert await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}")) == expected


@pytest.mark.anyio
async def test_a_redirect_is_never_followed(make_job: Callable[..., Job]) -> None:
    async with serve(_ok) as target:
        location = f"http://127.0.0.1:{target.port}/api/v1.1/profiles/delete".encode()

        async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(response(b"", b"308 Permanent Redirect", b"Location: " + location))
            await writer.drain()

        async with serve(redirect) as srv:
            verdict = await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}"))
    assert verdict == Abort("wrong_url", None, 308, None)
    assert target.connections == 0


@pytest.mark.anyio
async def test_a_429_carries_retry_after(make_job: Callable[..., Job]) -> None:
    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(b"", b"429 Too Many Requests", b"Retry-After: 7"))
        await writer.drain()

    async with serve(limited) as srv:
        verdict = await _verdict(make_job(base_url=f"http://127.0.0.1:{srv.port}"))
    assert verdict == Retry("http_429", 429, 7.0, False)


@pytest.mark.anyio
async def test_the_pool_holds_concurrency_connections(make_job: Callable[..., Job]) -> None:
    open_now = peak = 0

    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(0.01)
                writer.write(response())
                await writer.drain()
        finally:
            open_now -= 1

    async with serve(slow_ok) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}", run={"concurrency": 3})
        async with make_client(job, TOKEN) as client:
            answers = await asyncio.gather(*(send(client, REQ, TOKEN, "json") for _ in range(30)))
    assert all(classify(a, Codes()) == Erased("p1") for a in answers)
    assert 1 <= peak <= 3


# ---------------------------------------------------------------- unreachable, in words


def _connect(words: str) -> Retry:
    return Retry("connect", None, None, False, detail=words, stage=Stage.CONNECT)


@pytest.mark.anyio
async def test_a_refused_port(make_job: Callable[..., Job]) -> None:
    verdict = await _verdict(make_job(base_url=f"http://127.0.0.1:{free_port()}"))
    assert verdict == _connect("connection refused (nothing listens on that host and port)")


@pytest.mark.anyio
async def test_a_name_that_does_not_resolve(make_job: Callable[..., Job]) -> None:
    verdict = await _verdict(make_job(base_url="https://altcraft.invalid"))
    assert verdict == _connect("DNS: the host name does not resolve")


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Certificate]:
    folder = tmp_path_factory.mktemp("tls")
    return {
        "good": make_certificate(folder, "good"),
        "expired": make_certificate(folder, "expired", expired=True),
        "other-host": make_certificate(folder, "other", host="other.example"),
    }


_HINT = "; if a proxy or a private CA signs it, name that CA in api.ca_bundle"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("served", "trusted", "words"),
    [
        ("good", None, "TLS: the server's certificate is signed by an unknown CA" + _HINT),
        ("expired", "expired", "TLS: the server's certificate has expired or is not yet valid"),
        ("other-host", "other-host",
         "TLS: the server's certificate is for another host name" + _HINT),
    ],
    ids=["unknown-ca", "expired", "wrong-host"],
)  # fmt: skip
async def test_tls_failures_are_said_in_words(
    make_job: Callable[..., Job],
    certificates: dict[str, Certificate],
    served: str,
    trusted: str | None,
    words: str,
) -> None:
    bundle = None if trusted is None else str(certificates[trusted].cert)
    async with serve(_ok, certificates[served].server_context()) as srv:
        job = make_job(base_url=f"https://127.0.0.1:{srv.port}", ca_bundle=bundle)
        assert await _verdict(job) == _connect(words)


@pytest.mark.anyio
async def test_tls_trusts_the_ca_bundle(
    make_job: Callable[..., Job], certificates: dict[str, Certificate]
) -> None:
    good = certificates["good"]
    async with serve(_ok, good.server_context()) as srv:
        job = make_job(base_url=f"https://127.0.0.1:{srv.port}", ca_bundle=str(good.cert))
        assert await _verdict(job) == Erased("p1")


# ---------------------------------------------------------------- proxies


@pytest.mark.anyio
async def test_http_proxy_from_the_environment(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        lines.append(head.split(b"\r\n")[0])
        writer.write(response())
        await writer.drain()

    async with serve(proxy) as srv:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{srv.port}")
        # nothing listens on port 9: the answer can only come through the proxy
        assert await _verdict(make_job(base_url="http://127.0.0.1:9")) == Erased("p1")
    assert lines == [b"POST http://127.0.0.1:9/api/v1.1/profiles/delete HTTP/1.1"]


@pytest.mark.anyio
async def test_a_trickle_through_a_proxy_ends_within_the_deadline_too(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(_trickle) as srv:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{srv.port}")
        verdict = await _verdict(make_job(base_url="http://127.0.0.1:9", timeout_s=0.5))
    assert verdict == _TIMED_OUT


@pytest.mark.anyio
async def test_https_proxy_and_no_proxy(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[bytes] = []

    async def refusing_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serve(refusing_proxy) as proxy, serve(_ok) as direct:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "example.org,.localhost")
        verdict = await _verdict(make_job(base_url="https://altcraft.invalid"))
        assert verdict == _connect("the proxy refused the tunnel (HTTP 403)")
        assert lines == [b"CONNECT altcraft.invalid:443 HTTP/1.1"]
        # NO_PROXY names it: straight to the server
        job = make_job(base_url=f"http://localhost:{direct.port}")
        assert await _verdict(job) == Erased("p1")
        assert len(lines) == 1


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypassed"),
    [
        ("https://api.example.org", "example.org", True),
        ("https://api.example.org", ".example.org", True),
        ("https://API.Example.ORG", "example.org", True),
        ("https://example.org", "example.org", True),
        ("https://badexample.org", "example.org", False),
        ("https://example.org", "example.org:443", True),
        ("https://example.org", "example.org:8443", False),
        ("https://example.org:8443", "example.org:8443", True),
        ("http://example.org", "example.org:80", True),
        ("https://example.org", " other.org , example.org ", True),
        ("https://example.org", "*", True),
        ("https://example.org", "", False),
        ("https://10.0.0.5", "10.0.0.5", True),
    ],
)
def test_no_proxy_decides_whether_the_proxy_is_used(
    url: str, no_proxy: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    chosen = proxy_for(httpx.URL(url))
    assert (chosen is None) == bypassed
    if chosen is not None:
        assert "proxy.internal" == chosen.url.host


def test_json_body_is_valid_json() -> None:
    body, _ = encode(REQ, TOKEN, "json")
    assert json.loads(body)["resource_id"] == 24
