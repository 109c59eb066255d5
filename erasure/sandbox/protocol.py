"""The delete endpoint's wire format: JSON or XML bodies in, the same format out.

Pure functions, no I/O. :func:`decode` turns a body into its fields,
:func:`parse` checks them into a :class:`DeleteRequest`; both raise
:class:`BadRequest` (error 400) with a reason. :func:`success` and
:func:`error` encode answers as Altcraft does::

    {"data": {"profile_id": "..."}, "error": 0, "error_text": "Successful operation"}
    {"error": 404, "error_text": "Profile not found"}

and the same fields under an ``<xml>`` root. XML with a DOCTYPE or an entity
declaration is refused (no DTD, so no entity expansion: defusedxml's rule).
In JSON, ``db_id`` and ``resource_id`` must be integers; in XML, where every
value is text, they must be digits.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

Format = Literal["json", "xml"]
MATCHINGS = ("email", "phone", "profile_id", "custom")
MAX_BODY = 10 * 1024 * 1024  # bytes; Altcraft documents a 10 MB request limit

SUCCESS_TEXT = "Successful operation"
TEXTS = {
    400: "Incorrect request",
    401: "API token required",
    402: "Tariff limit reached",
    403: "No access rights",
    404: "Profile not found",
}

CONTENT_TYPES: dict[Format, bytes] = {
    "json": b"application/json",
    "xml": b"application/xml; charset=utf-8",
}


class BadRequest(Exception):
    """The body cannot be used: error 400, the message says why."""


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    """A checked delete: what to look for, where."""

    db_id: int
    matching: str  # one of MATCHINGS
    value: str  # the email, phone, profile id, or field value (as text)
    field_name: str = ""  # custom matching only
    resource_id: int | None = None  # email and phone matching only


_FORMATS: dict[bytes, Format] = {b"application/json": "json", b"application/xml": "xml"}


def body_format(content_type: bytes) -> Format | None:
    """The request's format from its Content-Type, or None when unsupported."""
    fmt = _FORMATS.get(content_type)  # the common, exact spellings: one lookup
    if fmt is not None:
        return fmt
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/json":
        return "json"
    if media in (b"application/xml", b"text/xml"):
        return "xml"
    return None


def decode(body: bytes, fmt: Format) -> Mapping[str, object]:
    """The body's top-level fields."""
    if fmt == "json":
        try:
            fields = json.loads(body.decode())  # str: skips json's encoding sniffing
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise BadRequest("the body is not a JSON object")
        return fields
    return _decode_xml(body)


# The common shape, <xml><name>plain text</name>...</xml>, read without a parser
# (three times faster); anything else (entities, CDATA, attributes) goes to
# ElementTree.
_XML_PLAIN = re.compile(
    rb"\s*(?:<\?xml[^>]*\?>\s*)?<xml>((?:\s*<([A-Za-z_][\w.-]*)>[^<&]*</\2>)*)\s*</xml>\s*"
)
_XML_FIELD = re.compile(rb"<([A-Za-z_][\w.-]*)>([^<&]*)</\1>")


def _decode_xml(body: bytes) -> Mapping[str, object]:
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise BadRequest("XML with a DOCTYPE or entities is refused")
    plain = _XML_PLAIN.fullmatch(body)
    if plain is not None:
        try:
            return {
                name.decode(): text.decode() for name, text in _XML_FIELD.findall(plain.group(1))
            }
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8") from None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise BadRequest("the body is not well-formed XML") from None
    if root.tag != "xml":
        raise BadRequest("the XML root element must be <xml>")
    fields: dict[str, object] = {}
    for child in root:
        if len(child):
            raise BadRequest(f"the XML element <{child.tag}> must hold text only")
        fields[child.tag] = child.text or ""
    return fields


def token_of(fields: Mapping[str, object], authorization: bytes) -> str:
    """The token from ``Authorization: Bearer`` or else the body; "" when missing."""
    if not authorization:
        token = fields.get("token")
        return token if isinstance(token, str) else ""
    scheme, _, credentials = authorization.decode("latin-1").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    token = fields.get("token")
    return token if isinstance(token, str) else ""


def parse(fields: Mapping[str, object], fmt: Format) -> DeleteRequest:
    """Check the fields of a delete; raises :class:`BadRequest`."""
    db_id = _integer(fields, "db_id", fmt)
    if db_id is None:
        raise BadRequest("db_id is required")
    matching = fields.get("matching", "email")
    if matching not in MATCHINGS:
        raise BadRequest("matching must be one of email, phone, profile_id, custom")
    assert isinstance(matching, str)
    resource_id = _integer(fields, "resource_id", fmt)
    if resource_id is not None and matching not in ("email", "phone"):
        raise BadRequest("resource_id is only allowed with email and phone matching")
    if matching != "custom":
        return DeleteRequest(db_id, matching, _text(fields, matching), "", resource_id)
    field_name = _text(fields, "field_name")
    value = fields.get("field_value")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("field_value is required with custom matching")
    return DeleteRequest(db_id, matching, value, field_name)


def _integer(fields: Mapping[str, object], name: str, fmt: Format) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if fmt == "xml" and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise BadRequest(f"{name} must be an integer")


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} is required with this matching")
    return value


def success(profile_id: str, fmt: Format) -> bytes:
    if fmt == "json":
        safe = profile_id.isascii() and profile_id.isalnum()  # hex ids need no escaping
        quoted = b'"%s"' % profile_id.encode() if safe else json.dumps(profile_id).encode()
        return (
            b'{"data":{"profile_id":' + quoted + b'},"error":0,"error_text":"Successful operation"}'
        )

    return (
        f"<xml><data><profile_id>{escape(profile_id)}</profile_id></data>"
        f"<error>0</error><error_text>{SUCCESS_TEXT}</error_text></xml>"
    ).encode()


def error(code: int, text: str, fmt: Format) -> bytes:
    if fmt == "json":
        return json.dumps({"error": code, "error_text": text}, ensure_ascii=False).encode()
    return f"<xml><error>{code}</error><error_text>{escape(text)}</error_text></xml>".encode()
