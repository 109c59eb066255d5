"""OpenDSR request files (``.json``): erasure requests in, the intake's rows out.

An OpenDSR (formerly OpenGDPR) request, as the specification's section 7
shows it (github.com/opengdpr/OpenDSR, ``specification.md``)::

    {"subject_request_id": "a7551968-…", "subject_request_type": "erasure",
     "submitted_time": "2018-10-02T15:00:00Z",
     "subject_identities": [{"identity_type": "email",
                             "identity_value": "johndoe@example.com",
                             "identity_format": "raw"}],
     "extensions": {"opendsr.mparticle.com": {"identities": [
         {"identity_type": "mobile_number", "identity_value": "+79001234567"}]}}}

A file holds one request or a list of them. Each identity becomes one row
of a table with the columns ``subject_request_id``, ``submitted_time``,
``email`` and ``mobile_number``, which the intake then reads like any other
file (:func:`erasure.intake.assemble.build`): the same normalisation, keys,
dedupe and invalid records. What the table cannot say is said here, as an
invalid record in place of the row's ``no_identifier``:

- a request of any type but ``erasure`` (``access``, ``portability``) is one
  row without identifier cells, reason ``not_an_erasure``: an access request
  must never become a delete, so its identities are not even read;
- an identity whose ``identity_format`` is not ``raw`` (``sha1``, ``md5``,
  ``sha256``) is a row without cells, reason ``hashed_identity``: Altcraft
  deletes by the address, and a hash cannot be turned back into one.

Identity types other than ``email`` and ``mobile_number`` (advertising
ids, ``controller_customer_id``) name nothing Altcraft matches on; an erasure
request with none of ours is a ``no_identifier`` record. mParticle's v3
dictionary form (``{"email": {"value": …, "encoding": "raw"}}``) is read too.

Rows are numbered in file order, one per identity (one per request without
identities); the words of an invalid record name the request's position and
the identity's, never a value. The JSON is bounded before it is parsed:
:data:`MAX_BYTES`, :data:`MAX_DEPTH` levels of nesting, numbers of at most
:data:`MAX_NUMBER_CHARS` characters; beyond them the file is unusable (65).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from erasure.errors import ConfigError, InputUnusable
from erasure.files import open_regular
from erasure.intake.assemble import build
from erasure.intake.layout import Layout, Spec
from erasure.intake.readers import Table
from erasure.intake.shapes import INVALID_SCHEMA, Intake, Reason
from erasure.job import Job
from erasure.keys import Keyer

SUFFIX = ".json"
MAX_BYTES = 256 << 20  # bytes of one OpenDSR file
MAX_DEPTH = 32  # nesting of arrays and objects (a request needs 5)
MAX_NUMBER_CHARS = 40  # characters of one JSON number

REQUEST_ID = "subject_request_id"
RECEIVED = "submitted_time"
EMAIL = "email"
PHONE = "mobile_number"
TYPE = "subject_request_type"
COLUMNS = (REQUEST_ID, RECEIVED, EMAIL, PHONE)
LAYOUT = Layout(
    specs=(Spec("email", EMAIL), Spec("phone", PHONE)),
    db_id=None,
    resource_id=None,
    request_id=REQUEST_ID,
    received_at=RECEIVED,
)


@dataclass(frozen=True, slots=True)
class _Note:
    """What replaces a row's ``no_identifier`` record: its column, reason and words."""

    row: int
    column: str
    reason: Reason
    words: str


def is_opendsr(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def read(job: Job, keyer: Keyer, path: Path) -> Intake:
    """The intake of an OpenDSR file (see the module's docstring)."""
    if job.input.db_id is None:
        raise ConfigError(
            "job file: an OpenDSR file names no database: set [input] db_id"
            " (db_id_column has no column to read in it)"
        )
    data = _bounded_bytes(path)
    sha256 = hashlib.sha256(data).hexdigest()
    requests = _requests(path.name, data)
    rows, notes = _rows(requests)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")
    table = Table(path.name, sha256, frame.lazy(), list(COLUMNS), "OpenDSR JSON", first_row=1)
    items, invalid, counts, usable, dates, _ = build(table, LAYOUT, job.input, keyer)
    # counts.no_identifier stays: those rows have no identifier cell, whatever the reason
    return Intake(path, sha256, items, _noted(invalid, notes), counts, usable, received=dates)


# ---------------------------------------------------------------- the JSON, bounded


def _bounded_bytes(path: Path) -> bytes:
    try:
        # a regular file only: a FIFO or /dev/zero is refused (65), never waited on
        with open_regular(path, "input file") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputUnusable(f"input file {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise InputUnusable(f"{path.name} is larger than {MAX_BYTES >> 20} MiB")
    if not data.strip():
        raise InputUnusable(f"{path.name} is empty")
    return data


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects, strings left out."""
    deepest = depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _number(text: str) -> float | int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _TooLong
    return float(text) if any(c in text for c in ".eE") else int(text)


class _TooLong(ValueError):
    pass


def _requests(file: str, data: bytes) -> list[Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputUnusable(f"{file} is not UTF-8 text (JSON must be UTF-8)") from None
    if _depth(data) > MAX_DEPTH:
        raise InputUnusable(f"{file}: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_int=_number, parse_float=_number)
    except _TooLong:
        raise InputUnusable(
            f"{file}: a JSON number is longer than {MAX_NUMBER_CHARS} characters"
        ) from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InputUnusable(f"{file} is not valid JSON{where}") from None
    requests = value if isinstance(value, list) else [value]
    if not requests or not all(isinstance(r, dict) for r in requests):
        raise InputUnusable(
            f"{file} is not an OpenDSR request file: expected one request object or a list of them"
        )
    if not any(TYPE in r for r in requests):
        raise InputUnusable(f"{file} is not an OpenDSR request file: no object has a {TYPE} field")
    return requests


# ---------------------------------------------------------------- requests into rows


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def _identities(request: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(type, value, format) of each identity the request names, in order.

    The subject's own identities first, then each extension's ``identities``;
    either is a list of OpenDSR identity objects or (mParticle v3) an object
    keyed by type.
    """
    found: list[tuple[str, Any, str]] = []
    extensions = request.get("extensions")
    listings = [request.get("subject_identities")] + [
        ext.get("identities") if isinstance(ext, dict) else None
        for ext in (extensions.values() if isinstance(extensions, dict) else ())
    ]
    for listed in listings:
        if isinstance(listed, list):
            named = [
                (i.get("identity_type"), i.get("identity_value"), i.get("identity_format"))
                for i in listed
                if isinstance(i, dict)
            ]
        elif isinstance(listed, dict):  # mParticle v3: keyed by type
            named = [
                (kind, i.get("value"), i.get("encoding"))
                for kind, i in listed.items()
                if isinstance(i, dict)
            ]
        else:
            continue
        found.extend(
            (kind.strip().casefold(), value, str(fmt or "raw").strip().casefold())
            for kind, value, fmt in named
            if isinstance(kind, str)
        )
    return found


def _rows(requests: list[Any]) -> tuple[list[tuple[str | None, ...]], list[_Note]]:
    rows: list[tuple[str | None, ...]] = []
    notes: list[_Note] = []
    for n, request in enumerate(requests, 1):
        rid = _text(request.get(REQUEST_ID))
        received = _text(request.get(RECEIVED))
        kind = request.get(TYPE)
        if not (isinstance(kind, str) and kind.strip().casefold() == "erasure"):
            rows.append((rid, received, None, None))
            what = "has no subject_request_type" if kind is None else "is not of type erasure"
            notes.append(
                _Note(
                    len(rows),
                    TYPE,
                    Reason.NOT_AN_ERASURE,
                    f"request {n} {what}: only erasure requests are read, and nothing"
                    " of this one is sent (an access or portability request is never a delete)",
                ),
            )
            continue
        ours = [(k, v, f) for k, v, f in _identities(request) if k in (EMAIL, PHONE)]
        if not ours:
            rows.append((rid, received, None, None))  # stays no_identifier
            continue
        for i, (kind_, value, fmt) in enumerate(ours, 1):
            if fmt != "raw":
                rows.append((rid, received, None, None))
                notes.append(
                    _Note(
                        len(rows),
                        kind_,
                        Reason.HASHED_IDENTITY,
                        f"request {n}, identity {i} ({kind_}) is not raw but hashed:"
                        " Altcraft deletes by the address itself and a hash cannot be"
                        " turned back into one; ask the controller for the raw identity",
                    )
                )
                continue
            text = _text(value)
            email, phone = (text, None) if kind_ == EMAIL else (None, text)
            rows.append((rid, received, email, phone))
    return rows, notes


def _noted(invalid: pl.DataFrame, notes: list[_Note]) -> pl.DataFrame:
    """``invalid`` with each noted row's ``no_identifier`` record saying what it really is."""
    if not notes:
        return invalid
    override = pl.DataFrame(
        {
            "row": [n.row for n in notes],
            "column_": [n.column for n in notes],
            "reason_": [n.reason.value for n in notes],
            "words_": [n.words for n in notes],
        },
        schema={"row": pl.Int64, "column_": pl.String, "reason_": pl.String, "words_": pl.String},
    )
    joined = invalid.join(override, on="row", how="left", maintain_order="left")
    hit = pl.col("reason_").is_not_null() & (pl.col("reason") == Reason.NO_IDENTIFIER.value)
    return (
        joined.with_columns(
            column=pl.when(hit).then("column_").otherwise("column"),
            reason=pl.when(hit).then("reason_").otherwise("reason"),
            words=pl.when(hit).then("words_").otherwise("words"),
        )
        .select(INVALID_SCHEMA.names())
        .cast(INVALID_SCHEMA)
    )
