"""Reading a receipt file strictly: the envelope first, then the document's shape.

The envelope (the two members and the signature block) is read before the
signature is checked; the document's shape only after, so that a changed
byte inside the document is reported as a broken signature rather than as
"not a receipt". Every misfit raises :class:`NotAReceipt` (exit 65) naming
the first member that does not fit; members this version does not know are
misfits too, so a receipt never claims what the checker cannot show.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from erasure import jsonbounds
from erasure.ledger import Outcome
from erasure.receipts.canonical import parse_head
from erasure.receipts.document import (
    FORMAT,
    MATCHING,
    ChainHeads,
    Claim,
    InvalidRecord,
    NotAReceipt,
    Reason,
    ReasonCount,
    Receipt,
    Request,
    Signature,
    SignedReceipt,
    Status,
)
from erasure.receipts.signing import ALGORITHM, SIGNATURE_BYTES

__all__ = ["load_envelope", "parse_document", "parse_signed"]


def load_envelope(raw: bytes) -> tuple[dict[str, Any], Signature]:
    """The document (as JSON) and the signature of a receipt file; NotAReceipt if none.

    Only the envelope is checked here, so that a changed byte inside the
    document is reported as a broken signature, not as "not a receipt".
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotAReceipt("not a receipt: the file is not UTF-8 text") from None
    beyond = jsonbounds.problem(raw)  # before the parser recurses or overflows on it
    if beyond is not None:
        raise NotAReceipt(f"not a receipt: it holds {beyond}")
    try:
        whole = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise NotAReceipt(
            f"not a receipt: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except _Duplicate as exc:
        raise NotAReceipt(f"not a receipt: the member {exc} appears twice") from None
    if not isinstance(whole, dict) or set(whole) != {"receipt", "signature"}:
        raise NotAReceipt("not a receipt: expected a JSON object with receipt and signature")
    document, block = whole["receipt"], whole["signature"]
    if not isinstance(document, dict) or not isinstance(block, dict):
        raise NotAReceipt("not a receipt: receipt and signature must be JSON objects")
    if set(block) != {"algorithm", "public_key_sha256", "value"}:
        raise NotAReceipt(
            "not a receipt: the signature block needs algorithm, public_key_sha256 and value"
        )
    algorithm, print_, value = block["algorithm"], block["public_key_sha256"], block["value"]
    if algorithm != ALGORITHM:
        raise NotAReceipt(f"not a receipt: the signature's algorithm is not {ALGORITHM}")
    if not isinstance(print_, str) or len(print_) != 64:
        raise NotAReceipt("not a receipt: public_key_sha256 is not a SHA-256 in hex")
    try:
        signature = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    # one spelling only: base64 may hide bits in its last character, and a changed
    # byte must never leave a receipt valid
    if len(signature) != SIGNATURE_BYTES or base64.b64encode(signature).decode() != value:
        raise NotAReceipt("not a receipt: the signature value is not 64 bytes of base64")
    return document, Signature(algorithm, print_, signature)


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON parsers disagree on which of two equal members wins: refuse both
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _Duplicate(repr(name[:40]))
        out[name] = value
    return out


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def parse_document(document: Mapping[str, Any]) -> Receipt:
    """The receipt a (signed) document states; NotAReceipt naming the first misfit."""
    r = _Reader(document, "receipt")
    # the page renderer: named by receipts since it was; absent, receipt-html/1
    renderer = r.get("renderer", str) if "renderer" in document else None
    fmt = r.get("format", str)
    if fmt != FORMAT:
        raise NotAReceipt(f"not a receipt this version reads: format {fmt[:40]!r}, not {FORMAT}")
    req = _Reader(r.get("request", dict), "request")
    request = Request(
        req.get("id", str),
        req.opt("received_at", str),
        req.opt("deadline", str),
        req.absent_or("original_deadline", str),
    )
    req.done()
    identifiers = []
    for i, item in enumerate(r.get("identifiers", list)):
        c = _Reader(_as(item, dict, f"identifiers[{i}]"), f"identifiers[{i}]")
        identifiers.append(
            Claim(
                seq=c.get("seq", int),
                db_id=c.get("db_id", int),
                matching=c.choice("matching", MATCHING),
                key=c.get("key", str),
                outcome=Outcome(c.choice("outcome", {o.value for o in Outcome})),
                in_doubt=c.get("in_doubt", bool),
                profile_id=c.opt("profile_id", str),
                at=c.opt("at", str),
                resource_id=c.opt("resource_id", int),
                field_name=c.opt("field_name", str),
                decision=c.absent_or("decision", str),
                suppressed=c.absent_or("suppressed", str),
            )
        )
        c.done()
    invalid = []
    for i, item in enumerate(r.get("invalid", list)):
        v = _Reader(_as(item, dict, f"invalid[{i}]"), f"invalid[{i}]")
        invalid.append(
            InvalidRecord(
                row=v.get("row", int),
                column=v.get("column", str),
                reason=v.get("reason", str),
                resolved=v.get("resolved", bool),
                seq=v.opt("seq", int),
            )
        )
        v.done()
    reasons = []
    for i, item in enumerate(r.get("reasons", list)):
        n = _Reader(_as(item, dict, f"reasons[{i}]"), f"reasons[{i}]")
        reasons.append(
            ReasonCount(Reason(n.choice("reason", {x.value for x in Reason})), n.get("count", int))
        )
        n.done()
    led = _Reader(r.get("ledger", dict), "ledger")
    heads = ChainHeads(led.get("head", str), led.get("plain_head", str))
    led.done()
    for name, head in (("ledger.head", heads.keyed), ("ledger.plain_head", heads.plain)):
        try:
            parse_head(head)
        except ValueError:
            raise NotAReceipt(f"not a receipt: {name} is not SEQ:LINK") from None
    databases = r.get("databases", list)
    receipt = Receipt(
        request=request,
        databases=tuple(_as(d, int, "databases[]") for d in databases),
        status=Status(r.choice("status", {s.value for s in Status})),
        reasons=tuple(reasons),
        identifiers=tuple(identifiers),
        invalid=tuple(invalid),
        heads=heads,
        issuer=r.get("issuer", str),
        issued_at=r.get("issued_at", str),
        format=fmt,
        renderer=renderer,
    )
    r.done()
    return receipt


def parse_signed(raw: bytes) -> SignedReceipt:
    """A receipt file's contents, without checking the signature (see ``check``)."""
    document, signature = load_envelope(raw)
    return SignedReceipt(parse_document(document), signature, raw)


_T = TypeVar("_T")


def _as(value: Any, kind: type[_T], where: str) -> _T:
    # bool is an int in Python, never in a receipt
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NotAReceipt(f"not a receipt: {where} is not {_KIND_WORDS.get(kind, kind.__name__)}")
    return value


_KIND_WORDS: dict[type, str] = {
    str: "text",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


class _Reader:
    """Takes members out of one JSON object, then insists nothing is left over."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self._data = dict(data)
        self._where = where

    def get(self, name: str, kind: type[_T]) -> _T:
        if name not in self._data:
            raise NotAReceipt(f"not a receipt: {self._where}.{name} is missing")
        return _as(self._data.pop(name), kind, f"{self._where}.{name}")

    def opt(self, name: str, kind: type[_T]) -> _T | None:
        if self._data.get(name, ...) is None:
            self._data.pop(name)
            return None
        return self.get(name, kind)

    def absent_or(self, name: str, kind: type[_T]) -> _T | None:
        """A member written only when it has a value (``original_deadline``)."""
        return self.get(name, kind) if name in self._data else None

    def choice(self, name: str, allowed: Iterable[str]) -> str:
        value = self.get(name, str)
        if value not in set(allowed):
            raise NotAReceipt(f"not a receipt: {self._where}.{name} {value[:40]!r} is unknown")
        return value

    def done(self) -> None:
        if self._data:
            extra = ", ".join(sorted(self._data)[:3])
            raise NotAReceipt(f"not a receipt: {self._where} has unknown members ({extra})")
