"""Verdicts, pure: what an answer or a transport failure means for one identifier.

::

    classify(answer, codes) -> Erased | NotFound | Rejected | Retry | Abort
    classify_exception(failure) -> Retry | Abort

A closed set of verdicts, each a frozen value, judged by the contract
(``[api.codes]``) from a decoded :class:`~erasure.altcraft.Answer`, or from
a :class:`~erasure.transport.TransportFailure`'s type and fields. The
runner acts on them (:mod:`erasure.run.retry`); :mod:`erasure.altcraft`
re-exports them with the protocol they judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from erasure.echoes import MAX_ERROR_TEXT
from erasure.transport import Stage, TransportFailure, Unforeseen, UnusableURL

if TYPE_CHECKING:
    from erasure.altcraft import Answer
    from erasure.job import Codes

__all__ = [
    "Abort",
    "AbortKind",
    "Erased",
    "NotFound",
    "Rejected",
    "Retry",
    "RetryReason",
    "Verdict",
    "classify",
    "classify_exception",
]


@dataclass(frozen=True, slots=True)
class Erased:
    """HTTP 2xx with ``error == 0``: the profile is gone."""

    profile_id: str | None


@dataclass(frozen=True, slots=True)
class NotFound:
    """A ``not_found`` code: nothing to erase, a final outcome."""

    code: int
    text: str | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Any other refusal of this identifier: final, it needs a person.

    ``code`` is ``None`` when the answer had no Altcraft body.
    """

    code: int | None
    text: str | None
    http_status: int


RetryReason: TypeAlias = Literal[
    "http_429",  # HTTP 429 (with or without an Altcraft body)
    "http_5xx",  # HTTP 5xx (with or without an Altcraft body)
    "http_408",  # HTTP 408 without a body: the server gave up waiting for the request
    "no_body",  # HTTP 2xx without an Altcraft body: transient and in doubt
    "connect",  # refused, DNS, TLS handshake or certificate, proxy: nothing was sent
    "connect_timeout",  # no connection within the connect timeout: nothing was sent
    "pool_timeout",  # no free connection in time: nothing was sent
    "write_timeout",  # the request could not be written in time
    "read_timeout",  # sent, no answer in time
    "disconnected",  # the server closed or broke the connection, or answered garbage
    "network",  # any other transport failure
    "unforeseen",  # an exception no layer was expected to raise (a bug?): ``Retry.unforeseen``
]


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: send again later (the attempt counts).

    ``after_s`` is the service's ``Retry-After`` in seconds, if it gave one.
    ``maybe_reached`` is true when the service may have acted on the request
    (it was sent, and the answer was lost or unusable): the ledger marks the
    identifier in doubt until a later answer settles it. ``unforeseen``
    names the type of an exception nothing expected (reason
    ``"unforeseen"``), so that the runner can log it and stop when they keep
    coming. ``detail`` is one short line in words for a transport failure
    (``erasure.client.describe``), for the error lines; never an identifier.
    ``stage`` is how far a request that got no answer went
    (:class:`erasure.transport.Stage`); ``None`` for an answer.
    """

    reason: RetryReason
    http_status: int | None
    after_s: float | None
    maybe_reached: bool
    unforeseen: str | None = None
    detail: str | None = None
    stage: Stage | None = None


AbortKind: TypeAlias = Literal["token", "unavailable", "wrong_url"]


@dataclass(frozen=True, slots=True)
class Abort:
    """Stop the whole run: no identifier can succeed as things are.

    ``token``: the token is refused (exit 77). ``unavailable``: the service
    refuses the whole run, such as the tariff limit (69). ``wrong_url``: the
    endpoint answers as if the URL were wrong (69). That the service cannot
    be reached at all is decided from a ``Retry("connect")`` at the
    preflight, by :func:`erasure.run.retry.decide`, not here.
    """

    kind: AbortKind
    code: int | None
    http_status: int | None
    text: str | None


Verdict: TypeAlias = Erased | NotFound | Rejected | Retry | Abort


def classify(answer: Answer, codes: Codes) -> Verdict:
    """Judge an answer by the contract (``[api.codes]``).

    With an Altcraft body (an integer ``error``):

    - HTTP 2xx and ``error == 0``: :class:`Erased`;
    - a ``not_found`` code: :class:`NotFound`; a ``token`` code: ``Abort("token")``;
      an ``unavailable`` code: ``Abort("unavailable")``, whatever the HTTP status;
    - any other non-zero code: :class:`Retry` when the HTTP status is 429 or
      5xx, otherwise :class:`Rejected` with the code and text;
    - ``error == 0`` with a non-2xx status: judged by the status as below.

    Without one, by the HTTP status alone:

    - an HTML page with a 2xx or 3xx status: ``Abort("wrong_url")``: a
      login page, a web server's index or a portal, not the API;
    - 2xx: ``Retry("no_body", maybe_reached=True)``: the service may have
      deleted, but nothing says so;
    - 3xx: ``Abort("wrong_url")``: a redirect answering a POST API means the
      URL is wrong (typically ``http://`` redirected to ``https://``, or a
      login page in front of it); following it would turn the POST into a
      GET or resend the token elsewhere, so redirects are never followed;
    - 401/403: ``Abort("token")`` (a gateway refusing the Bearer token);
    - 404/405/501: ``Abort("wrong_url")`` (no such path, method or function
      here: a proxy's HTML 404 is a wrong URL, not eight retries per identifier);
    - 408: ``Retry("http_408", maybe_reached=False)``: the server timed out
      waiting for the request, so it did not act;
    - 429: ``Retry("http_429", maybe_reached=False)``: a rate limiter refuses
      before the service acts;
    - any other 5xx (500, 502, 503, 504 ...), HTML page or not:
      ``Retry("http_5xx", maybe_reached=True)``: a proxy's error page while the
      service restarts must not end the night, and a gateway's 502/504 may
      come after the service acted;
    - anything else: ``Rejected(None, None, status)``.
    """
    status = answer.http_status
    error = answer.error
    if error is not None and error != 0:
        if error in codes.not_found:
            return NotFound(error, answer.error_text)
        if error in codes.token:
            return Abort("token", error, status, answer.error_text)
        if error in codes.unavailable:
            return Abort("unavailable", error, status, answer.error_text)
        if status == 429:
            return Retry("http_429", status, answer.retry_after_s, maybe_reached=False)
        if 500 <= status <= 599:
            return Retry("http_5xx", status, answer.retry_after_s, maybe_reached=True)
        return Rejected(error, answer.error_text, status)
    text = answer.error_text if error is not None else None
    if answer.html and 200 <= status <= 399:
        return Abort("wrong_url", None, status, "an HTML page")
    if 200 <= status <= 299:
        if error == 0:
            return Erased(answer.profile_id)
        return Retry("no_body", status, answer.retry_after_s, maybe_reached=True)
    if 300 <= status <= 399 or status in (404, 405, 501):
        return Abort("wrong_url", error, status, text)
    if status in (401, 403):
        return Abort("token", error, status, text)
    if status == 408:
        return Retry("http_408", status, answer.retry_after_s, maybe_reached=False)
    if status == 429:
        return Retry("http_429", status, answer.retry_after_s, maybe_reached=False)
    if 500 <= status <= 599:
        return Retry("http_5xx", status, answer.retry_after_s, maybe_reached=True)
    return Rejected(error, text, status)


def classify_exception(exc: BaseException) -> Verdict:
    """Judge a transport failure by its type and its fields, never its words.

    ``exc`` is what :func:`erasure.client.send` raises: a
    :class:`~erasure.transport.TransportFailure`. Total: every exception
    gets a verdict. A failure before anything was sent (connect errors:
    refused, DNS, TLS, proxy; connect or pool timeouts; a hang-up before the
    request left) is ``Retry(maybe_reached=False)``; one after it may have
    left (read and write timeouts, dropped connections, garbled answers) is
    ``Retry(maybe_reached=True)``: the service may have acted. The runner
    stops at a ``Retry("connect")`` at the preflight unless the peer hung up
    (:func:`erasure.run.retry.decide`). A URL that cannot be sent to
    (:class:`~erasure.transport.UnusableURL`) is ``Abort("wrong_url")``.
    Anything else (:class:`~erasure.transport.Unforeseen`, or an exception
    that is no transport failure at all: a bug) is ``Retry("unforeseen",
    maybe_reached=True, unforeseen=<type name>)``: it may have been sent.
    ``detail`` is the failure's words, cut to 500 characters; for an
    unforeseen one only its type is said.
    """
    if isinstance(exc, UnusableURL):
        return Abort("wrong_url", None, None, str(exc)[:MAX_ERROR_TEXT])
    if isinstance(exc, Unforeseen):
        return _unforeseen(exc.type_name)
    if isinstance(exc, TransportFailure):
        return Retry(
            exc.reason,
            None,
            None,
            maybe_reached=exc.maybe_reached,
            detail=str(exc)[:MAX_ERROR_TEXT],
            stage=exc.stage,
        )
    return _unforeseen(type(exc).__name__)


def _unforeseen(type_name: str) -> Retry:
    return Retry(
        "unforeseen",
        None,
        None,
        maybe_reached=True,
        unforeseen=type_name,
        detail=f"unforeseen {type_name} in the HTTP client",
        stage=Stage.UNKNOWN,
    )
