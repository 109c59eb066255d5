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

The verdicts and the two classifiers are :mod:`erasure.verdicts`, re-exported
here with the protocol they judge.
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

from erasure.job import Matching
from erasure.verdicts import (
    Abort,
    AbortKind,
    Erased,
    NotFound,
    Rejected,
    Retry,
    RetryReason,
    Verdict,
    classify,
    classify_exception,
)

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
