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
  exception's type. The stage is decided from the exception's class
  (:mod:`erasure.explain`) and where it was caught (here), never from its
  message; :func:`erasure.altcraft.classify_exception` turns each into a
  verdict.
"""

from __future__ import annotations

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
from erasure.explain import cause_of, describe, explained
from erasure.job import Job
from erasure.transport import Stage, TransportFailure

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
    # never the URL itself in the message: a proxy URL may carry a password
    unusable = ConfigError(
        f"the proxy in the environment ({url.scheme.upper()}_PROXY or ALL_PROXY) is not a "
        "usable proxy URL such as http://proxy.example:3128: fix or unset it"
    )
    try:
        proxy = httpx.Proxy(chosen)
        port = proxy.url.port
    except (ValueError, httpx.InvalidURL):
        raise unusable from None
    if not proxy.url.host or (port is not None and not 0 < port < 65536):
        raise unusable
    return proxy


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
        raise explained(exc) from exc
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
        if isinstance(cause_of(exc), aiohttp.ClientConnectionResetError):
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
