"""The HTTP client: the request it sends, and what the real transport raises."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from erasure import job as jobfile
from erasure.altcraft import (
    PATH,
    Abort,
    Answer,
    DeleteRequest,
    Erased,
    Retry,
    classify,
    classify_exception,
    encode,
)
from erasure.client import AltcraftClient, make_client, send, translate
from erasure.errors import ConfigError
from erasure.job import Codes, Job
from tests.raw_http import Handler, read_request, serve

TOKEN = "sandbox-token"
REQ = DeleteRequest(1, "email", "user1@example.com", resource_id=24)
SUCCESS = b'{"data":{"profile_id":"p1"},"error":0,"error_text":"Successful operation"}'


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
    assert request.headers["user-agent"].startswith("erasure")
    assert "cookie" not in request.headers
    assert request.content == encode(REQ, TOKEN, job.api.format)[0]
    assert request.extensions["timeout"] == {"connect": 7, "read": 7, "write": 7, "pool": 7}


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


@pytest.mark.anyio
async def test_redirects_are_not_followed(make_job: Callable[..., Job]) -> None:
    seen: list[httpx.Request] = []
    transport = _mock(seen, 308, b"", Location="https://127.0.0.1:9/api/v1.1/profiles/delete")
    async with make_client(make_job(), TOKEN, transport=transport) as client:
        answer = await send(client, REQ, TOKEN, "json")
        assert not client.follow_redirects
    assert len(seen) == 1
    assert classify(answer, Codes()) == Abort("wrong_url", None, 308, None)


@pytest.mark.anyio
async def test_a_plain_async_client_works_too() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(base_url="http://h", transport=_mock(seen)) as client:
        answer = await send(client, REQ, TOKEN, "xml")
    assert answer.error == 0
    assert seen[0].url.path == PATH
    assert seen[0].headers["content-type"] == "application/xml"


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


def test_the_default_transport(make_job: Callable[..., Job]) -> None:
    client = make_client(make_job(run={"concurrency": 5}), TOKEN)
    assert isinstance(client, AltcraftClient)
    assert isinstance(client.delete_transport, AiohttpTransport)
    assert client.delete_transport.limits.max_connections == 5
    assert client.timeout == httpx.Timeout(10.0)


# ---------------------------------------------------------------- real sockets


def _response(body: bytes = SUCCESS, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(_response())
        await writer.drain()


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


async def _partial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"err')
    await writer.drain()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_wire_request_of_the_default_transport(
    make_job: Callable[..., Job], fmt: str
) -> None:
    """The direct aiohttp path sends what the httpx path sends (test_request_shape)."""
    heads: list[bytes] = []
    bodies: list[bytes] = []

    async def capture(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = int(dict(_header_lines(head))[b"content-length"])
        bodies.append(await reader.readexactly(length))
        writer.write(_response())
        await writer.drain()

    async with serve(capture) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}/altcraft", format=fmt)
        async with make_client(job, TOKEN) as client:
            answer = await send(client, REQ, TOKEN, job.api.format)
    assert classify(answer, Codes()) == Erased("p1")
    (head,) = heads
    assert head.split(b"\r\n")[0] == b"POST /altcraft/api/v1.1/profiles/delete HTTP/1.1"
    headers = dict(_header_lines(head))
    ctype = f"application/{fmt}".encode()
    assert headers[b"host"] == f"127.0.0.1:{srv.port}".encode()
    assert headers[b"authorization"] == f"Bearer {TOKEN}".encode()
    assert headers[b"content-type"] == ctype
    assert headers[b"accept"] == ctype
    assert headers[b"accept-encoding"] == b"gzip, deflate"
    assert headers[b"user-agent"].startswith(b"erasure")
    assert b"cookie" not in headers
    assert bodies == [encode(REQ, TOKEN, job.api.format)[0]]


@pytest.mark.anyio
async def test_a_gzip_answer_is_decoded(make_job: Callable[..., Job]) -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = gzip.compress(SUCCESS)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()

    async with serve(gzipped) as srv:
        client = make_client(make_job(base_url=f"http://127.0.0.1:{srv.port}"), TOKEN)
        async with client:
            answer = await send(client, REQ, TOKEN, "json")
    assert classify(answer, Codes()) == Erased("p1")


def _header_lines(head: bytes) -> Iterator[tuple[bytes, bytes]]:
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            yield name.strip().lower(), value.strip()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "verdict"),
    [
        (None, Retry("connect", None, None, False)),  # nothing listens: refused
        (_close, Retry("disconnected", None, None, True)),
        (_hang, Retry("read_timeout", None, None, True)),
        (_garbage, Retry("disconnected", None, None, True)),
        (_partial, Retry("disconnected", None, None, True)),
        (_reset, Retry("disconnected", None, None, True)),
    ],
    ids=["refused", "close", "hang", "garbage", "partial", "reset"],
)
async def test_transport_failures_are_classified(
    make_job: Callable[..., Job], handler: Handler | None, verdict: Retry
) -> None:
    """What the default transport really raises, once :func:`send` translated it."""

    async def attempt(port: int) -> BaseException:
        job = make_job(base_url=f"http://127.0.0.1:{port}", timeout_s=0.3)
        async with make_client(job, TOKEN) as client:
            with pytest.raises(httpx.TransportError) as info:
                await send(client, REQ, TOKEN, "json")
        return info.value

    if handler is None:
        exc = await attempt(_free_port())
    else:
        async with serve(handler) as srv:
            exc = await attempt(srv.port)
    assert classify_exception(exc) == verdict


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
                writer.write(_response())
                await writer.drain()
        finally:
            open_now -= 1

    async with serve(slow_ok) as srv:
        job = make_job(base_url=f"http://127.0.0.1:{srv.port}", run={"concurrency": 3})
        async with make_client(job, TOKEN) as client:
            answers = await asyncio.gather(*(send(client, REQ, TOKEN, "json") for _ in range(30)))
    assert all(classify(a, Codes()) == Erased("p1") for a in answers)
    assert 1 <= peak <= 3


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    yield cert, key


@pytest.mark.anyio
async def test_tls_trusts_the_ca_bundle_only(
    make_job: Callable[..., Job], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with serve(_ok, server_ctx) as srv:
        url = f"https://127.0.0.1:{srv.port}"
        async with make_client(make_job(base_url=url), TOKEN) as client:
            with pytest.raises(httpx.TransportError) as info:
                await send(client, REQ, TOKEN, "json")
        assert classify_exception(info.value) == Retry("connect", None, None, False)
        assert isinstance(info.value, httpx.ConnectError)
        async with make_client(make_job(base_url=url, ca_bundle=str(cert)), TOKEN) as client:
            answer = await send(client, REQ, TOKEN, "json")
    assert classify(answer, Codes()) == Erased("p1")


@pytest.mark.anyio
async def test_http_proxy_from_the_environment(
    make_job: Callable[..., Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        lines.append(head.split(b"\r\n")[0])
        writer.write(_response())
        await writer.drain()

    async with serve(proxy) as srv:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{srv.port}")
        # nothing listens on port 9: the answer can only come through the proxy
        async with make_client(make_job(base_url="http://127.0.0.1:9"), TOKEN) as client:
            answer = await send(client, REQ, TOKEN, "json")
    assert answer.error == 0
    assert lines == [b"POST http://127.0.0.1:9/api/v1.1/profiles/delete HTTP/1.1"]


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
        monkeypatch.setenv("NO_PROXY", "localhost")
        job = make_job(base_url="https://altcraft.invalid")
        async with make_client(job, TOKEN) as client:
            assert client._wire is None  # through a proxy: aiohttp, which speaks CONNECT
            with pytest.raises(httpx.TransportError) as info:
                await send(client, REQ, TOKEN, "json")
        assert classify_exception(info.value) == Retry("connect", None, None, False)
        assert lines == [b"CONNECT altcraft.invalid:443 HTTP/1.1"]
        # NO_PROXY: straight to the server
        job = make_job(base_url=f"http://localhost:{direct.port}")
        async with make_client(job, TOKEN) as client:
            assert client._wire is not None  # no proxy: the lean transport
            assert (await send(client, REQ, TOKEN, "json")).error == 0
        assert len(lines) == 1


# ---------------------------------------------------------------- translation


class _Key:
    host, port, ssl, is_ssl = "127.0.0.1", 9, True, False


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientConnectionResetError("reset"), httpx.ReadError),
        (aiohttp.ClientPayloadError("short"), httpx.RemoteProtocolError),
        (aiohttp.ConnectionTimeoutError("pool or connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ClientConnectorError(_Key(), OSError(111, "refused")), httpx.ConnectError),  # type: ignore[arg-type]
        (aiohttp.ClientConnectorDNSError(_Key(), OSError(-2, "no name")), httpx.ConnectError),  # type: ignore[arg-type]
        (aiohttp.ClientProxyConnectionError(_Key(), OSError(111, "x")), httpx.ProxyError),  # type: ignore[arg-type]
        (aiohttp.InvalidURL("x"), httpx.UnsupportedProtocol),
        (aiohttp.ClientError("other"), httpx.TransportError),
        (TimeoutError(), httpx.ReadTimeout),
    ],
)
def test_translate(cause: BaseException, expected: type[httpx.TransportError]) -> None:
    # raw, and wrapped the way httpx-aiohttp wraps them (as ConnectTimeout, mostly)
    assert type(translate(cause)) is expected
    wrapped = httpx.ConnectTimeout(str(cause))
    wrapped.__cause__ = cause
    assert type(translate(wrapped)) is expected


def test_translate_keeps_httpx_own() -> None:
    exc = httpx.ReadTimeout("x")
    assert translate(exc) is exc


def test_json_body_is_valid_json() -> None:
    body, _ = encode(REQ, TOKEN, "json")
    assert json.loads(body)["resource_id"] == 24
