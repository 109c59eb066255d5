"""The Altcraft protocol, pure: encode a delete, decode an answer, classify it.

No network code lives here. :mod:`erasure.client` sends the bytes that
:func:`encode` makes and hands the answer to :func:`decode`; the runner turns
the :class:`Answer` (or the transport exception) into a :data:`Verdict` with
:func:`classify` (or :func:`classify_exception`) and acts on it.

The seed (``POST /api/v1.1/profiles/delete``) documents the body fields and an
answer of the form ``{"data": {"profile_id": …}, "error": 0, "error_text": …}``
in JSON or XML. It does not document the "not found" code, rate limits, or
whether errors come with HTTP 200 or 4xx/5xx, so success is HTTP 2xx *and*
``error == 0``, a non-2xx answer is parsed when it carries a body, and which
codes mean what comes from the job file (:class:`erasure.job.Codes`).

Longer than most modules because the protocol is one concept: encoding,
decoding and classifying share the answer's shape and the code tables, and
the classification tables, read in one place, are most of its length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_str  # json.dumps(str), minus 0.5 µs
from typing import Literal, TypeAlias
from xml.etree import ElementTree

from erasure.echoes import MAX_ERROR_TEXT
from erasure.job import Codes, Matching
from erasure.transport import Stage, TransportFailure, Unforeseen, UnusableURL

__all__ = [
    "PATH",
    "Abort",
    "AbortKind",
    "Answer",
    "DeleteRequest",
    "Erased",
    "NotFound",
    "Rejected",
    "Retry",
    "RetryReason",
    "Verdict",
    "classify",
    "classify_exception",
    "decode",
    "encode",
    "parse_retry_after",
]

PATH = "/api/v1.1/profiles/delete"
"""The seed endpoint, relative to ``api.base_url``."""

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"

MAX_BODY = 1 << 20  # bytes; a longer answer is no Altcraft answer and is not parsed
MAX_RETRY_AFTER_S = 1e9  # seconds; a Retry-After beyond this (about 31 years) is clamped


# ---------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    """One ``profiles/delete`` call, with the identifier as it is sent.

    ``matching`` is one of :data:`erasure.job.Matching`;
    ``value`` is the normalised email, E.164 phone, profile id or custom
    field value (``field_name`` names the field). ``value_is_int`` sends a
    custom field value as a JSON integer (an integer column of a typed input
    format). ``resource_id`` is sent with ``email`` and ``phone`` matching
    only, as the seed documents; with the other modes it is ignored.
    """

    db_id: int
    matching: Matching
    value: str
    value_is_int: bool = False
    field_name: str | None = None
    resource_id: int | None = None


def encode(req: DeleteRequest, token: str, fmt: Literal["json", "xml"]) -> tuple[bytes, str]:
    """The request body (UTF-8 bytes) and its ``Content-Type``.

    JSON fields come in the seed's order: ``token``, ``db_id``, ``matching``,
    then ``email`` | ``phone`` | ``profile_id`` | ``field_name`` +
    ``field_value``, then ``resource_id`` when set (email and phone only).
    XML is the same fields as children of a ``<xml>`` root, text escaped.
    Everything before the identifier is cached per (token, db_id, matching,
    field name): the hot path formats one value and joins three strings
    (about 1.4 µs, a third of ``json.dumps`` of the dict). Raises
    ``ValueError`` for an unknown ``matching`` or ``fmt``, a custom request
    without ``field_name``, or ``value_is_int`` with a value that is no integer.
    """
    custom = req.matching == "custom"
    prefix = _prefix(token, req.db_id, req.matching, req.field_name if custom else None, fmt)
    rid = req.resource_id if req.matching in ("email", "phone") else None
    number = str(int(req.value)) if custom and req.value_is_int else None
    if fmt == "json":
        value = _json_str(req.value) if number is None else number
        if rid is None:
            return (prefix + value + "}").encode(), JSON_TYPE
        return (prefix + value + ',"resource_id":' + str(int(rid)) + "}").encode(), JSON_TYPE
    tag = "field_value" if custom else req.matching
    value = _xml_escape(req.value) if number is None else number
    tail = "" if rid is None else f"<resource_id>{int(rid)}</resource_id>"
    return f"{prefix}{value}</{tag}>{tail}</xml>".encode(), XML_TYPE


@lru_cache(maxsize=256)
def _prefix(token: str, db_id: int, matching: str, field_name: str | None, fmt: str) -> str:
    if matching not in ("email", "phone", "profile_id", "custom"):
        raise ValueError(f"unknown matching mode {matching!r}")
    if matching == "custom" and not field_name:
        raise ValueError("custom matching needs a field_name")
    field_name = field_name or ""
    db = str(int(db_id))
    if fmt == "json":
        head = f'{{"token":{_json_str(token)},"db_id":{db},"matching":"{matching}",'
        if matching == "custom":
            return head + f'"field_name":{_json_str(field_name)},"field_value":'
        return head + f'"{matching}":'
    if fmt != "xml":
        raise ValueError(f"unknown format {fmt!r}")
    head = (
        f"<xml><token>{_xml_escape(token)}</token><db_id>{db}</db_id>"
        f"<matching>{matching}</matching>"
    )
    if matching == "custom":
        return head + f"<field_name>{_xml_escape(field_name)}</field_name><field_value>"
    return head + f"<{matching}>"


def _xml_escape(text: str) -> str:
    """Element text: ``& < >`` escaped, ``\\r`` as a reference (parsers read a raw one as \\n).

    Other C0 control characters cannot appear in XML 1.0 at all; such a value
    is sent as it is and the service refuses it (``rejected``).
    """
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


# ---------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back, decoded; no judgement yet.

    ``error`` is ``None`` when the body was no Altcraft body (empty, HTML,
    garbage, or without an integer ``error`` field); then ``error_text`` and
    ``profile_id`` are ``None`` too. ``retry_after_s`` is the ``Retry-After``
    header in seconds from now (0 for a date in the past), ``None`` when
    absent or unreadable. ``html`` is true when the body is an HTML page
    (a login page, a proxy's or a web server's page): no API answers so.
    """

    http_status: int
    error: int | None
    error_text: str | None
    profile_id: str | None
    retry_after_s: float | None
    html: bool = False


def decode(
    http_status: int,
    content_type: str | None,
    body: bytes,
    retry_after: str | None,
    now: datetime | None = None,
) -> Answer:
    """Decode an answer of any status. Never raises on any ``body``.

    The format is sniffed from the first non-space byte (``{`` JSON, ``<``
    XML), whatever ``content_type`` claims: proxies and error paths label
    bodies wrongly. ``now`` (aware, or naive meaning UTC) is the reference
    for an HTTP-date ``Retry-After``; the current time when ``None``.
    """
    del content_type  # not trusted; kept in the signature for the record
    after = None if retry_after is None else parse_retry_after(retry_after, now)
    fields = _fields(body)
    if fields is None:
        return Answer(http_status, None, None, None, after, html=_is_html(body))
    error, text, profile_id = fields
    return Answer(http_status, error, text, profile_id, after)


_Fields: TypeAlias = tuple[int, str | None, str | None]
_INT = re.compile(r"\s*([+-]?[0-9]{1,18})\s*", re.ASCII)
_SPACE = b" \t\r\n"


def _fields(body: bytes) -> _Fields | None:
    if not body or len(body) > MAX_BODY:
        return None
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    first = body.lstrip(_SPACE)[:1]
    if first == b"{":
        return _json_fields(body)
    if first == b"<":
        return _xml_fields(body)
    return None


_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title")


def _is_html(body: bytes) -> bool:
    """An HTML page, by its first bytes (an XML prolog or comments may come first)."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf" + _SPACE).lower()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2 :].lstrip(_SPACE)
    while head.startswith(b"<!--") and b"-->" in head:
        head = head[head.find(b"-->") + 3 :].lstrip(_SPACE)
    return head.startswith(_HTML_STARTS)


def _json_fields(body: bytes) -> _Fields | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # ValueError covers UnicodeDecodeError
        return None
    if not isinstance(doc, dict):
        return None
    error = _as_int(doc.get("error"))
    if error is None:
        return None
    text = doc.get("error_text")
    data = doc.get("data")
    pid = data.get("profile_id") if isinstance(data, dict) else None
    if pid is None:
        pid = doc.get("profile_id")
    return error, _as_text(text), _as_text(pid)


def _xml_fields(body: bytes) -> _Fields | None:
    # No DTDs: an Altcraft answer has none, and an entity is an attack or an HTML page.
    head = body[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        return None
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError, LookupError, RecursionError):
        return None
    error = _as_int(root.findtext("error"))
    if error is None:
        return None
    pid = root.findtext("data/profile_id")
    if pid is None:
        pid = root.findtext("profile_id")
    return error, root.findtext("error_text"), pid or None


def _as_int(value: object) -> int | None:
    """An integer, or a string holding one (XML has only text); never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (m := _INT.fullmatch(value)):
        return int(m.group(1))
    return None


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


_DELTA = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*", re.ASCII)


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now``: delay-seconds or an HTTP-date.

    A negative delay or a date in the past is 0; an unreadable value is
    ``None``. Fractional seconds are accepted although RFC 9110 has none.
    """
    m = _DELTA.fullmatch(value)
    if m:
        return min(max(float(m.group(1)), 0.0), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC too
        when = when.replace(tzinfo=UTC)
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


# ---------------------------------------------------------------- verdicts


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
