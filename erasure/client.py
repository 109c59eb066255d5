"""The HTTP client: one ``httpx.AsyncClient`` for the run, and one call.

:func:`make_client` builds the client from the job: the base URL, explicit
connect/read/write/pool timeouts of ``api.timeout_s`` seconds, a keep-alive
pool of ``run.concurrency`` connections, the token as ``Authorization:
Bearer`` (it also goes in the body, as the seed documents), ``api.ca_bundle``
as the trust store when set, proxies from ``HTTPS_PROXY``/``HTTP_PROXY``/
``NO_PROXY``, and no redirects (a redirect means the URL is wrong, see
:func:`erasure.altcraft.classify`).

The default transport is ``httpx_aiohttp.AiohttpTransport``: at concurrency
64 on a 2-core machine it costs a fraction of the CPU of httpx's own pool
(``bench/transport.py`` has the figures). It maps aiohttp's errors to httpx's
wrongly (a dropped connection or a refused one both become
``ConnectTimeout``), so :func:`send` translates them from the aiohttp cause.

:func:`send` is the hot path. Without a proxy it posts through
:class:`erasure.wire.Wire`, a keep-alive HTTP/1.1 client prepared once for
the delete URL with the client's headers, timeouts and TLS context (about
80 µs of CPU per request at concurrency 64 here, against 240 through
aiohttp; ``bench/transport.py``). Through a proxy it posts through that
transport's own aiohttp session (the same pool, TLS context, proxy and
timeouts), skipping the ``httpx.Request``/``httpx.Response`` round trip.
With an injected transport (a ``MockTransport`` in tests) it builds the
``httpx.Request`` and calls that transport; any other ``AsyncClient`` is
used through its public ``post``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Literal

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict

from erasure.altcraft import JSON_TYPE, PATH, XML_TYPE, Answer, DeleteRequest, decode, encode
from erasure.errors import ConfigError
from erasure.job import Job
from erasure.wire import Wire

__all__ = ["AltcraftClient", "make_client", "send", "ssl_context", "translate"]

KEEPALIVE_S = 4.0  # seconds an idle connection is kept; below common server idle timeouts (5 s)
_LIMITS = httpx.Limits()


def _user_agent() -> str:
    try:
        return f"erasure/{version('erasure')}"
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "erasure"


class _AiohttpRoute(AiohttpTransport):
    """httpx-aiohttp's transport, with its session within reach of :func:`send`."""

    def session(self) -> aiohttp.ClientSession:
        """The session, made on first use (inside the event loop)."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client


@dataclass(frozen=True, slots=True)
class _Direct:
    """What :func:`send` needs to post through the route's session, prepared once."""

    route: _AiohttpRoute
    url: yarl.URL
    headers: dict[str, CIMultiDict[str]]  # per content type
    timeout: aiohttp.ClientTimeout
    proxy: str | None
    proxy_auth: aiohttp.BasicAuth | None
    proxy_headers: CIMultiDict[str] | None


class AltcraftClient(httpx.AsyncClient):
    """An ``AsyncClient`` over aiohttp that knows the delete URL and routes it once.

    ``delete_url`` is the base URL joined with the seed path; the transport
    for it (a proxy's, or the direct one) is chosen at construction exactly
    as httpx would choose it per request. The aiohttp transports are made by
    httpx's own ``_init_transport`` hooks rather than passed as
    ``transport=``, because httpx ignores the proxy environment when a
    transport is passed (``httpx_aiohttp.HttpxAiohttpClient`` does the
    same). A ``transport`` that is passed (tests) is used as it is, without
    proxies, as httpx does. When the route is the default transport without
    a proxy, :func:`send` posts through ``_wire``; with a proxy, through the
    aiohttp session directly (``_direct``).
    """

    def __init__(self, *, pool: int, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._pool = pool
        self._ssl_context = ssl_context
        super().__init__(verify=ssl_context, **kwargs)
        self.delete_url: httpx.URL = self.base_url.join(PATH.lstrip("/"))
        # A private httpx method, on purpose and pinned by tests/test_client.py:
        # it applies the proxy environment (and NO_PROXY) the way httpx does.
        self.delete_transport: httpx.AsyncBaseTransport = self._transport_for_url(self.delete_url)
        self.delete_headers: dict[str, httpx.Headers] = {}
        for ctype in (JSON_TYPE, XML_TYPE):
            headers = self.headers.copy()
            headers["Content-Type"] = ctype
            headers["Accept"] = ctype
            self.delete_headers[ctype] = headers
        self.delete_extensions: dict[str, Any] = {"timeout": self.timeout.as_dict()}
        self._direct = self._prepare_direct()
        self._wire = self._prepare_wire()

    def _prepare_wire(self) -> Wire | None:
        """The lean transport, when the delete URL is reached without a proxy."""
        route = self.delete_transport
        if not isinstance(route, _AiohttpRoute) or route.proxy is not None:
            return None
        t = self.timeout
        return Wire(
            self.delete_url,
            {kind: headers.raw for kind, headers in self.delete_headers.items()},
            ssl_context=self._ssl_context,
            connect_s=t.connect if t.connect is not None else 3600.0,
            read_s=t.read if t.read is not None else 3600.0,
            pool_s=t.pool if t.pool is not None else 3600.0,
            keepalive_s=KEEPALIVE_S,
            pool=self._pool,
        )

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        await super().aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        # httpx's __aexit__ closes the transports itself, without aclose()
        if self._wire is not None:
            await self._wire.aclose()
        await super().__aexit__(exc_type, exc_value, traceback)

    def _prepare_direct(self) -> _Direct | None:
        route = self.delete_transport
        if not isinstance(route, _AiohttpRoute):
            return None
        proxy = route.proxy
        t = self.timeout
        return _Direct(
            route=route,
            url=yarl.URL(str(self.delete_url), encoded=True),
            headers={k: CIMultiDict(v.multi_items()) for k, v in self.delete_headers.items()},
            # httpx-aiohttp's own mapping: aiohttp's "connect" covers the pool wait
            # and the connection; aiohttp has no write timeout
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=t.connect, sock_read=t.read, connect=t.pool
            ),
            proxy=None if proxy is None else str(proxy.url),
            proxy_auth=(
                aiohttp.BasicAuth(proxy.auth[0], proxy.auth[1])
                if proxy is not None and proxy.auth
                else None
            ),
            proxy_headers=None if proxy is None else CIMultiDict(proxy.headers.multi_items()),
        )

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return self._route(limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _LIMITS,
    ) -> httpx.AsyncBaseTransport:
        return self._route(limits, proxy)

    def _route(
        self, limits: httpx.Limits, proxy: httpx.Proxy | None = None
    ) -> httpx.AsyncBaseTransport:
        """The aiohttp transport both hooks build, with or without a proxy."""
        return _AiohttpRoute(
            verify=self._ssl_context,
            limits=limits,
            proxy=proxy,
            client=_SessionFactory(self._pool, self._ssl_context),
        )


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
            timeout=aiohttp.ClientTimeout(total=None),  # per request, from httpx's timeouts
            trust_env=False,  # proxies are httpx's business (routing), not aiohttp's
        )


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


def make_client(
    job: Job, token: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> AltcraftClient:
    """The run's client. ``transport`` replaces the default (tests pass a MockTransport).

    Timeouts: connect, read, write and pool each ``api.timeout_s`` seconds.
    Pool: ``run.concurrency`` connections, all kept alive (idle ones for
    :data:`KEEPALIVE_S` seconds). The client must be used inside one event
    loop and closed with ``aclose()`` (or ``async with``).
    """
    if not token.isascii() or not token.isprintable() or token != token.strip():
        raise ConfigError(
            "the API token contains characters that cannot go in an HTTP header"
            " (spaces at either end, control or non-ASCII characters)"
        )
    api = job.api
    ctx = ssl_context(None if api.ca_bundle is None else str(api.ca_bundle))
    pool = job.run.concurrency
    limits = httpx.Limits(
        max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=KEEPALIVE_S
    )
    ctype = JSON_TYPE if api.format == "json" else XML_TYPE
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": ctype,
        "Accept": ctype,
        "Accept-Encoding": "gzip, deflate",  # what both httpx and aiohttp decode without extras
        "User-Agent": _user_agent(),
    }
    return AltcraftClient(
        pool=pool,
        ssl_context=ctx,
        base_url=api.base_url,
        headers=headers,
        timeout=httpx.Timeout(api.timeout_s),
        limits=limits,
        trust_env=True,
        follow_redirects=False,
        transport=transport,
    )


async def send(
    client: httpx.AsyncClient, req: DeleteRequest, token: str, fmt: Literal["json", "xml"]
) -> Answer:
    """Send one delete and decode the answer, whatever its HTTP status.

    Raises only httpx's transport exceptions (``httpx.TransportError``
    subclasses, aiohttp's translated by :func:`translate`); the runner
    judges them with :func:`erasure.altcraft.classify_exception`.
    """
    body, ctype = encode(req, token, fmt)
    try:
        if isinstance(client, AltcraftClient):
            wire = client._wire
            if wire is not None:
                got = await wire.post(body, ctype)
                return decode(got.status, got.content_type, got.content, got.retry_after)
            direct = client._direct
            if direct is not None:
                async with direct.route.session().post(
                    direct.url,
                    data=body,
                    headers=direct.headers[ctype],
                    timeout=direct.timeout,
                    allow_redirects=False,
                    proxy=direct.proxy,
                    proxy_auth=direct.proxy_auth,
                    proxy_headers=direct.proxy_headers,
                ) as reply:
                    content = await reply.read()
                    h = reply.headers
                    return decode(
                        reply.status, h.get("Content-Type"), content, h.get("Retry-After")
                    )
            request = httpx.Request(
                "POST",
                client.delete_url,
                headers=client.delete_headers[ctype],
                content=body,
                extensions=dict(client.delete_extensions),
            )
            response = await client.delete_transport.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        else:
            response = await client.post(
                PATH, content=body, headers={"Content-Type": ctype, "Accept": ctype}
            )
            content = response.content
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        better = translate(exc)
        if better is exc:
            raise
        raise better from exc
    headers = response.headers
    return decode(
        response.status_code, headers.get("content-type"), content, headers.get("retry-after")
    )


def translate(exc: BaseException) -> httpx.TransportError:
    """An httpx exception that says what happened, from an aiohttp one or its wrapper.

    httpx-aiohttp 0.2 maps ``ServerDisconnectedError``, connection resets,
    refused connections and DNS failures all to ``httpx.ConnectTimeout``,
    and lets a malformed answer through as aiohttp's ``ClientResponseError``;
    the runner needs to know whether the request may have reached the
    service, so the aiohttp cause decides. httpx's own exceptions pass as they are.
    """
    cause: BaseException | None = exc
    if isinstance(exc, httpx.TransportError):
        cause = exc.__cause__
        if not isinstance(cause, aiohttp.ClientError | TimeoutError):
            return exc
    message = str(exc) or type(exc).__name__
    cls: type[httpx.TransportError]
    if isinstance(cause, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        cls = httpx.ProxyError
    elif isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS, certificate
        cls = httpx.ConnectError
    elif isinstance(cause, aiohttp.ConnectionTimeoutError):  # connect, or waiting for the pool
        cls = httpx.ConnectTimeout
    elif isinstance(cause, aiohttp.ServerTimeoutError):  # SocketTimeoutError: no answer in time
        cls = httpx.ReadTimeout
    elif isinstance(
        cause,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        cls = httpx.RemoteProtocolError
    elif isinstance(cause, aiohttp.InvalidURL):
        cls = httpx.UnsupportedProtocol
    elif isinstance(cause, aiohttp.ClientConnectionError):  # resets and other OS errors
        cls = httpx.ReadError
    elif isinstance(cause, TimeoutError):
        cls = httpx.ReadTimeout
    else:  # httpx-aiohttp's own mapping cannot be trusted: assume the worst, it may have arrived
        cls = httpx.TransportError
    return cls(message)
