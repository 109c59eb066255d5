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
import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from erasure import jsonbounds
from erasure.declared import fields_of, unoptional
from erasure.receipts.document import (
    NotAReceipt,
    Receipt,
    Signature,
    SignedReceipt,
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
    """The receipt a (signed) document states; NotAReceipt naming the first misfit.

    Read by the declaration of :class:`Receipt` (``member`` in
    :mod:`erasure.receipts.document`): each object's members in the order of
    its fields, each of its field's type, then nothing left over.
    """
    receipt: Receipt = _object(Receipt, document, "receipt", top=True)
    return receipt


def parse_signed(raw: bytes) -> SignedReceipt:
    """A receipt file's contents, without checking the signature (see ``check``)."""
    document, signature = load_envelope(raw)
    return SignedReceipt(parse_document(document), signature, raw)


def _object(cls: Any, data: Mapping[str, Any], where: str, *, top: bool = False) -> Any:
    """JSON object ``data`` as the declared dataclass ``cls``, named ``where``.

    The objects it holds are named ``where.name``; the top one's by their names.
    """
    inner = "" if top else f"{where}."
    rest = dict(data)
    values: dict[str, Any] = {}
    for f, tp in fields_of(cls):
        name = f.metadata["name"] or f.name
        at = f"{where}.{name}"
        if name not in rest and f.metadata["omitted"]:
            continue  # written only when it has a value
        if name not in rest:
            raise _misfit(f"{at} is missing")
        value = rest.pop(name)
        if value is None and type(None) in get_args(tp) and not f.metadata["omitted"]:
            values[f.name] = None
            continue
        value = _value(unoptional(tp), value, at, inner + name)
        choices = f.metadata["choices"]
        if choices is not None and value not in choices:
            raise _misfit(f"{at} {value[:40]!r} is unknown")
        problem = f.metadata["check"] and f.metadata["check"](value)
        if problem:
            raise _misfit(f"{at} {problem}")
        values[f.name] = value
    if rest:
        raise _misfit(f"{where} has unknown members ({', '.join(sorted(rest)[:3])})")
    return cls(**values)


def _value(tp: Any, value: Any, at: str, name: str) -> Any:
    """``value`` as type ``tp``; ``at`` names it, ``name`` the items or members it holds."""
    if dataclasses.is_dataclass(tp):
        return _object(tp, _as(value, dict, at), name)
    if get_origin(tp) is tuple:
        (item, _) = get_args(tp)
        each = "{}[{}]" if dataclasses.is_dataclass(item) else "{}[]"  # objects by their place
        items = enumerate(_as(value, list, at))
        return tuple(_value(item, v, each.format(name, i), f"{name}[{i}]") for i, v in items)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        text = _as(value, str, at)
        if text not in {m.value for m in tp}:
            raise _misfit(f"{at} {text[:40]!r} is unknown")
        return tp(text)
    return _as(value, tp, at)


def _misfit(why: str) -> NotAReceipt:
    return NotAReceipt(f"not a receipt: {why}")


_T = TypeVar("_T")


def _as(value: Any, kind: type[_T], where: str) -> _T:
    # bool is an int in Python, never in a receipt
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _misfit(f"{where} is not {_KIND_WORDS.get(kind, kind.__name__)}")
    return value


_KIND_WORDS: dict[type, str] = {
    str: "text",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}
