"""The HTTP client: one path for every delete, over httpx's transport API.

:func:`make_client` builds an :class:`AltcraftClient` from the job: the
delete URL, the headers (the token as ``Authorization: Bearer``; it also goes
in the body, as the seed documents), ``api.timeout_s`` as the whole budget
of one request, ``api.ca_bundle`` as the trust store when set, and the
proxy for that one URL from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/
``NO_PROXY``. Its transport is ``httpx_aiohttp.AiohttpTransport`` (aiohttp's
keep-alive pool under httpx's ``Request``/``Response``): at concurrency 64
against the sandbox it cost 398 µs of CPU a request against 2,276 through
httpx's own httpcore pool, whose per-request pool bookkeeping grows with the
pool (``bench/transport.py``). Tests pass any ``httpx.AsyncBaseTransport``
(``httpx.MockTransport``) to the same seam, and :func:`send` takes the same
path through it, direct, proxied or mocked.

:func:`send` posts one delete and reads the answer:

- the whole exchange (pool wait, connect, TLS, write, read of the body) ends
  within ``timeout_s`` seconds (``anyio.move_on_after``), whatever the route;
- the body is read as it streams and decompressed here, bounded: no more
  than :data:`erasure.altcraft.MAX_BODY` bytes are ever held, compressed or
  not (a gzip bomb is inflated 1 MiB at most, then dropped);
- redirects are never followed (``AiohttpTransport`` does not, and the
  transport API has no redirect logic);
- a pooled connection that the peer had closed before the request was
  written is given up and the request goes once more on a fresh one;
- every failure leaves as erasure's own
  :class:`~erasure.transport.TransportFailure`, carrying the
  :class:`~erasure.transport.Stage` the request reached (so whether the
  service may have acted) and one short line in words (:func:`describe`);
  anything unforeseen as :class:`~erasure.transport.Unforeseen` naming the
  exception's type. The stage is decided here, from the exception's class
  and where it was caught, never from its message;
  :func:`erasure.altcraft.classify_exception` turns each into a verdict.

Longer than most modules: the transport, the per-request deadline, the
capped streaming read and the words for every failure belong together,
since each failure's wording is tied to where it is caught.
"""

from __future__ import annotations

import errno
import socket
import ssl
import urllib.request
import zlib
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Literal

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from erasure.altcraft import (
    JSON_TYPE,
    MAX_BODY,
    PATH,
    XML_TYPE,
    Answer,
    DeleteRequest,
    decode,
    encode,
)
from erasure.errors import ConfigError
from erasure.job import Job
from erasure.transport import Stage, TransportFailure, Unforeseen, UnusableURL

__all__ = [
    "KEEPALIVE_S",
    "AltcraftClient",
    "describe",
    "make_client",
    "send",
    "ssl_context",
]

KEEPALIVE_S = 4.0  # seconds an idle connection is kept; below common server idle timeouts (5 s)
CONNECT_SHARE = 0.9  # of api.timeout_s, for the pool wait and the connect (TLS included)


@dataclass(frozen=True, slots=True)
class AltcraftClient:
    """What :func:`send` needs, prepared once for the run.

    ``transport`` is any httpx transport (aiohttp's in production, a
    ``MockTransport`` in tests); ``url`` the delete URL; ``headers`` the
    request headers per content type; ``timeout_s`` the budget of one whole
    exchange in seconds; ``proxy`` the proxy the transport goes through, if
    any (for the record; the transport applies it).
    """

    transport: httpx.AsyncBaseTransport
    url: httpx.URL
    headers: dict[str, httpx.Headers]
    timeout_s: float
    proxy: httpx.Proxy | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()

    async def __aenter__(self) -> AltcraftClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


def _user_agent() -> str:
    try:
        return f"erasure/{version('erasure')}"
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "erasure"


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS context: certificates are verified, against ``ca_bundle`` (PEM) when given.

    ``ca_bundle`` replaces the trust store (as httpx's ``verify=path`` does):
    a corporate CA in front of the service is all that is trusted. Without
    it, httpx's default store: certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    when set.
    """
    if ca_bundle is None:
        return httpx.create_ssl_context(verify=True, trust_env=True)
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"job file: api.ca_bundle {ca_bundle} cannot be used: {reason}") from None


def proxy_for(url: httpx.URL) -> httpx.Proxy | None:
    """The proxy the environment names for ``url``, or ``None`` (none, or ``NO_PROXY``).

    ``HTTPS_PROXY``/``HTTP_PROXY`` by the URL's scheme, else ``ALL_PROXY``
    (either case, as the standard library reads them). ``NO_PROXY`` as
    :func:`urllib.request.proxy_bypass_environment` matches it: a
    comma-separated list of host names, each matching itself and its
    subdomains (a leading dot is optional), with an optional ``:port``; ``*``
    matches every host. The client talks to one URL only, so the choice is
    made once.
    """
    proxies = urllib.request.getproxies_environment()
    if _bypassed(url, proxies):
        return None
    chosen = proxies.get(url.scheme) or proxies.get("all")
    if not chosen:
        return None
    if "://" not in chosen:
        chosen = "http://" + chosen
    try:
        return httpx.Proxy(chosen)
    except ValueError as exc:
        raise ConfigError(f"the proxy in the environment cannot be used: {exc}") from None


def _bypassed(url: httpx.URL, proxies: dict[str, str]) -> bool:
    """``NO_PROXY`` as the standard library matches it, the port made explicit."""
    port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
    # in the standard library since Python 2, absent from typeshed's stubs
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bool(bypass(f"{url.host}:{port}", proxies))


def make_client(
    job: Job, token: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> AltcraftClient:
    """The run's client. ``transport`` replaces the default (tests pass a MockTransport).

    The default transport keeps a pool of ``run.concurrency`` keep-alive
    connections (idle ones for :data:`KEEPALIVE_S` seconds), through the
    environment's proxy for the delete URL when there is one. The client must
    be used inside one event loop and closed with ``aclose()`` (or ``async
    with``). Raises :class:`ConfigError` for a token that cannot go in a
    header, an unusable ``ca_bundle`` or proxy.
    """
    if not token.isascii() or not token.isprintable() or token != token.strip():
        raise ConfigError(
            "the API token contains characters that cannot go in an HTTP header"
            " (spaces at either end, control or non-ASCII characters)"
        )
    api = job.api
    url = httpx.URL(api.base_url.rstrip("/") + PATH)
    proxy = None
    if transport is None:
        ctx = ssl_context(None if api.ca_bundle is None else str(api.ca_bundle))
        proxy = proxy_for(url)
        pool = job.run.concurrency
        transport = AiohttpTransport(
            verify=ctx,
            limits=httpx.Limits(
                max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=KEEPALIVE_S
            ),
            proxy=proxy,
            client=_SessionFactory(pool, ctx),
        )
    headers: dict[str, httpx.Headers] = {}
    for ctype in (JSON_TYPE, XML_TYPE):
        headers[ctype] = httpx.Headers(
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": ctype,
                "Accept": ctype,
                # An answer is ~100 bytes: compression buys nothing, and one
                # sent anyway is decoded here, bounded (_Body).
                "Accept-Encoding": "identity",
                "User-Agent": _user_agent(),
            }
        )
    t = api.timeout_s
    # The pool wait and the connect end a little before the whole budget, so
    # that a transport that watches them (aiohttp) says that nothing was sent;
    # reading and writing are bounded by the budget alone (send's deadline).
    before = round(t * CONNECT_SHARE, 3)
    extensions = {"timeout": {"connect": before, "read": None, "write": None, "pool": before}}
    return AltcraftClient(transport, url, headers, t, proxy, extensions)


class _SessionFactory:
    """Makes the aiohttp session lazily, inside the running event loop."""

    def __init__(self, limit: int, ctx: ssl.SSLContext) -> None:
        self.limit = limit
        self.ctx = ctx

    def __call__(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limit,  # the pool: one connection per worker, never more
            ssl=self.ctx,
            keepalive_timeout=KEEPALIVE_S,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a stateless API: no cookies kept or sent
            timeout=aiohttp.ClientTimeout(total=None),  # per request, from the extensions
            auto_decompress=False,  # decoded in _Body, bounded
            trust_env=False,  # the proxy is chosen once, in make_client
        )


# ---------------------------------------------------------------- sending


async def send(
    client: AltcraftClient, req: DeleteRequest, token: str, fmt: Literal["json", "xml"]
) -> Answer:
    """Send one delete and decode the answer, whatever its HTTP status.

    Takes at most ``client.timeout_s`` seconds. Raises only
    :class:`~erasure.transport.TransportFailure` (see the module's
    docstring), with a message in words; cancellation passes through.
    """
    try:
        body, ctype = encode(req, token, fmt)
        # move_on_after, not fail_after: aiohttp's own timeouts are TimeoutErrors
        # too, and only this scope's expiry means "the whole budget is spent".
        with anyio.move_on_after(client.timeout_s):
            try:
                return await _exchange(client, body, ctype)
            except _Unsent:
                pass
            # A pooled connection was found closed before a byte left: the pool
            # has dropped it, and for the server this request never existed.
            return await _exchange(client, body, ctype)
    except Exception as exc:
        raise _explained(exc) from exc
    raise TransportFailure(
        f"no complete answer within {client.timeout_s:g} s (api.timeout_s)",
        Stage.ANSWER,
        timed_out=True,
    )


class _Unsent(TransportFailure):
    """aiohttp found its pooled connection closing before it wrote a byte of the request."""

    def __init__(self) -> None:
        super().__init__(
            "the server closed the connection before the request was sent", Stage.HUNG_UP
        )


async def _exchange(client: AltcraftClient, body: bytes, ctype: str) -> Answer:
    request = httpx.Request(
        "POST",
        client.url,
        headers=client.headers[ctype],
        content=body,
        extensions=client.extensions,
    )
    try:
        response = await client.transport.handle_async_request(request)
    except Exception as exc:
        # aiohttp raises ClientConnectionResetError from its writer alone, when
        # the connection is closing or gone as the request is handed to it:
        # before the answer, it means the request never left.
        if isinstance(_cause(exc), aiohttp.ClientConnectionResetError):
            raise _Unsent() from exc
        raise
    try:
        reader = _Body(response.headers.get("content-encoding"))
        stream = response.stream
        # The transport's own stream, raw: not aiter_raw(), which refuses a
        # response built from bytes (MockTransport's), nor aiter_bytes(), which
        # would inflate a compressed chunk whole.
        if not isinstance(stream, httpx.AsyncByteStream):
            raise TypeError("the transport answered with a synchronous stream")
        async for chunk in stream:
            if not reader.feed(chunk):
                break  # over the cap: the rest is not read, the connection is dropped
        content = reader.result()
    finally:
        await response.aclose()
    status = response.status_code
    if reader.unread and not (200 <= status <= 299 or status == 429 or 500 <= status <= 599):
        # Judged by its status alone, such an answer would be final or end the
        # run (a 404 read as a wrong URL, a 400 as rejected), yet it may be
        # Altcraft's own answer inflated on the way: a garbled answer, transient.
        raise TransportFailure("the answer's body could not be read", Stage.ANSWER)
    h = response.headers
    return decode(status, h.get("content-type"), content, h.get("retry-after"))


class _Body:
    """An answer's body, decoded from its ``Content-Encoding`` as it arrives, capped.

    Holds at most :data:`MAX_BODY` + 1 decoded bytes; a body longer than
    that, one in an encoding other than identity, gzip or deflate, or one
    that does not decompress is no Altcraft body: :meth:`result` is then
    ``b""``, and the answer is judged by its HTTP status.
    """

    __slots__ = ("_buf", "_inflate", "_usable")

    def __init__(self, encoding: str | None) -> None:
        self._buf = bytearray()
        self._usable = True
        self._inflate: Any = None
        coding = (encoding or "identity").strip().lower()
        if coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header
        elif coding != "identity":
            self._usable = False

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``False`` once reading further is pointless."""
        if not self._usable:
            return False
        if self._inflate is None:
            self._buf += chunk
        else:
            data = chunk
            try:
                while data and len(self._buf) <= MAX_BODY:
                    # max_length bounds what one compressed chunk may inflate to
                    self._buf += self._inflate.decompress(data, MAX_BODY + 1 - len(self._buf))
                    data = self._inflate.unconsumed_tail
            except zlib.error:
                self._usable = False
                return False
        if len(self._buf) > MAX_BODY:
            self._usable = False
            return False
        return True

    @property
    def unread(self) -> bool:
        """Whether a body came that could not be read (over the cap, or badly encoded)."""
        return not self._usable

    def result(self) -> bytes:
        return bytes(self._buf) if self._usable else b""


def _cause(exc: BaseException) -> BaseException:
    """What a transport's exception wraps: httpx-aiohttp maps aiohttp's coarsely, cause kept."""
    if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


# ---------------------------------------------------------------- errors in words


def describe(exc: BaseException) -> str:
    """One short line saying what went wrong on the network, for the run's and preflight's lines.

    TLS failures name the reason (expired, another host's certificate, an
    unknown CA) and point to ``api.ca_bundle``; DNS failures, refused and
    reset connections, timeouts and garbled answers are each said as such.
    Never quotes a header, body or identifier.
    """
    return str(_explained(exc))


def _explained(exc: BaseException) -> TransportFailure:
    """The :class:`TransportFailure` for an exception of any layer, in words and with its stage."""
    if isinstance(exc, TransportFailure):
        return exc
    cause = _cause(exc)
    if isinstance(cause, TransportFailure):
        return cause
    return _kind(cause) or Unforeseen(type(cause).__name__)


_TLS_HINT = "; if a proxy or a private CA signs it, name that CA in api.ca_bundle"


def _tls_words(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        code = err.verify_code
        if code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
            return "TLS: the server's certificate has expired or is not yet valid"
        if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return "TLS: the server's certificate is for another host name" + _TLS_HINT
        if code in (18, 19, 20, 21):  # self-signed, unknown issuer
            return "TLS: the server's certificate is signed by an unknown CA" + _TLS_HINT
        return f"TLS: the server's certificate was refused ({err.verify_message})" + _TLS_HINT
    reason = getattr(err, "reason", None) or type(err).__name__
    return f"TLS: the handshake failed ({reason})"


def _connect_stage(err: BaseException | None) -> Stage:
    """A connect that failed: reset or cut by the peer after accept (HUNG_UP), or no peer."""
    if isinstance(err, ssl.SSLError):
        return Stage.CONNECT  # the handshake failed: no peer that speaks for the service
    if isinstance(err, ConnectionResetError | BrokenPipeError) or (
        isinstance(err, OSError) and err.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        return Stage.HUNG_UP
    return Stage.CONNECT


def _os_words(err: BaseException | None) -> str:
    if isinstance(err, ssl.SSLError):
        return _tls_words(err)
    if isinstance(err, socket.gaierror):
        return "DNS: the host name does not resolve"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (nothing listens on that host and port)"
    if isinstance(err, ConnectionResetError | BrokenPipeError) or (
        isinstance(err, OSError) and err.errno in (errno.ECONNRESET, errno.EPIPE)
    ):
        return "the connection was reset by the server"
    if isinstance(err, TimeoutError):
        return "no answer in time"
    if isinstance(err, OSError) and err.errno is not None:
        name = errno.errorcode.get(err.errno, str(err.errno))
        return f"network error {name}: {err.strerror or 'no description'}"
    return f"network error ({type(err).__name__})"


def _kind(err: BaseException) -> TransportFailure | None:
    """The failure, in words and with its stage, for one exception of any layer; ``None``:
    unforeseen."""
    F = TransportFailure
    # aiohttp's, most specific first
    if isinstance(err, aiohttp.ClientProxyConnectionError):
        words = "the proxy cannot be reached: " + _os_words(err.os_error)
        return F(words, _connect_stage(err.os_error))
    if isinstance(err, aiohttp.ClientHttpProxyError):
        return F(f"the proxy refused the tunnel (HTTP {err.status})", Stage.CONNECT)
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return F(_tls_words(err.certificate_error), Stage.CONNECT)
    if isinstance(err, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return F(_tls_words(getattr(err, "os_error", err)), Stage.CONNECT)
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return F("DNS: the host name does not resolve", Stage.CONNECT)
    if isinstance(err, aiohttp.ClientConnectorError):
        return F(_os_words(err.os_error), _connect_stage(err.os_error))
    if isinstance(err, aiohttp.ConnectionTimeoutError):  # connect, or the pool wait
        return F("no connection in time (api.timeout_s)", Stage.CONNECT, timed_out=True)
    if isinstance(err, aiohttp.ServerTimeoutError):  # SocketTimeoutError: the read
        return F("no answer in time (api.timeout_s)", Stage.ANSWER, timed_out=True)
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return F("the server closed the connection before answering", Stage.ANSWER)
    if isinstance(err, aiohttp.ClientPayloadError):
        return F("the answer was cut short", Stage.ANSWER)
    if isinstance(err, aiohttp.ClientResponseError):  # the parser refused the answer
        return F("the answer is not valid HTTP", Stage.ANSWER)
    if isinstance(err, aiohttp.InvalidURL):
        return UnusableURL()
    if isinstance(err, aiohttp.ClientOSError):
        return F(_os_words(err), Stage.ANSWER)
    if isinstance(err, aiohttp.ClientConnectionError):  # resets and closes of a live connection
        return F("the connection was lost", Stage.ANSWER)
    # httpx's own, as a MockTransport or another transport raises them
    if isinstance(err, httpx.UnsupportedProtocol):
        return UnusableURL()
    if isinstance(err, httpx.RequestError) and not isinstance(err, httpx.LocalProtocolError):
        return _httpx_failure(err)
    # the standard library's, should a layer let them through
    if isinstance(err, ssl.SSLError | socket.gaierror | ConnectionRefusedError):
        return F(_os_words(err), Stage.CONNECT)
    if isinstance(err, TimeoutError):
        return F("no answer in time (api.timeout_s)", Stage.ANSWER, timed_out=True)
    if isinstance(err, OSError):
        return F(_os_words(err), Stage.ANSWER)
    return None


# httpx's exception classes: words, the stage, and whether the budget ran out.
# The first along the exception's MRO wins.
_HTTPX: dict[type[httpx.RequestError], tuple[str, Stage, bool]] = {
    httpx.ConnectTimeout: ("no connection in time (api.timeout_s)", Stage.CONNECT, True),
    httpx.PoolTimeout: ("no free connection in time (api.timeout_s)", Stage.POOL, True),
    httpx.ReadTimeout: ("no answer in time (api.timeout_s)", Stage.ANSWER, True),
    httpx.WriteTimeout: (
        "the request could not be written in time (api.timeout_s)",
        Stage.SEND,
        True,
    ),
    httpx.TimeoutException: ("no answer in time (api.timeout_s)", Stage.UNKNOWN, True),
    httpx.ConnectError: ("the connection could not be made", Stage.CONNECT, False),
    httpx.ProxyError: ("the proxy failed", Stage.CONNECT, False),
    httpx.ReadError: ("the connection broke while reading the answer", Stage.ANSWER, False),
    httpx.WriteError: ("the connection broke while writing the request", Stage.SEND, False),
    httpx.CloseError: ("the connection broke while closing", Stage.ANSWER, False),
    httpx.RemoteProtocolError: (
        "the answer is not valid HTTP or was cut short",
        Stage.ANSWER,
        False,
    ),
    httpx.DecodingError: (
        "the answer's body could not be read (over 1 MiB, or badly encoded)",
        Stage.ANSWER,
        False,
    ),
}


def _httpx_failure(err: httpx.RequestError) -> TransportFailure:
    for cls in type(err).__mro__:
        if cls in _HTTPX:
            words, stage, timed_out = _HTTPX[cls]
            return TransportFailure(words, stage, timed_out=timed_out)
    return TransportFailure("the network failed", Stage.UNKNOWN)
