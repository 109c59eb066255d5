"""Every failure of every layer under the client, as erasure's own: its stage and its words.

aiohttp's exceptions (most of them wrapped by httpx-aiohttp in a coarser
httpx class, the exact one kept as ``__cause__``), httpx's own (as a
``MockTransport`` raises them) and the standard library's become one
:class:`~erasure.transport.TransportFailure` each: the
:class:`~erasure.transport.Stage` the request reached, decided from the
exception's class, and one short line in words for people (TLS failures
name the reason and point to ``api.ca_bundle``). Anything else is
:class:`~erasure.transport.Unforeseen`, naming its type only.
"""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp
import httpx

from erasure.transport import Stage, TransportFailure, Unforeseen, UnusableURL

__all__ = ["cause_of", "describe", "explained"]


def cause_of(exc: BaseException) -> BaseException:
    """What a transport's exception wraps: httpx-aiohttp maps aiohttp's coarsely, cause kept."""
    if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def describe(exc: BaseException) -> str:
    """One short line saying what went wrong on the network, for the run's and preflight's lines.

    TLS failures name the reason (expired, another host's certificate, an
    unknown CA) and point to ``api.ca_bundle``; DNS failures, refused and
    reset connections, timeouts and garbled answers are each said as such.
    Never quotes a header, body or identifier.
    """
    return str(explained(exc))


def explained(exc: BaseException) -> TransportFailure:
    """The :class:`TransportFailure` for an exception of any layer, in words and with its stage."""
    if isinstance(exc, TransportFailure):
        return exc
    cause = cause_of(exc)
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
