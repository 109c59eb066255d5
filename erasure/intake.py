"""Intake: a request file in, a clean, deduplicated, keyed list of identifiers out.

::

    file ─► reader (by suffix) ─► columns mapped ─► cells as text ─► normalised
         ─► row checks (db_id, resource_id, received_at) ─► invalid records
         ─► one item per (request id, key), first seen first ─► keys

Readers: CSV/TSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, or Windows-1251;
delimiter sniffed among ``,`` ``;`` tab ``|``; every cell text), Parquet,
XLSX (the first sheet), NDJSON/JSONL. A file that cannot be used raises
:class:`~erasure.errors.InputUnusable` (65) with one line saying why; a
missing one :class:`~erasure.errors.FileMissing` (66). A bad cell never
stops the file: it becomes an invalid record (:data:`INVALID_SCHEMA`). Messages name files,
columns and rows, never a cell's value.
"""

from __future__ import annotations

import codecs
import csv
import enum
import functools
import hashlib
import io
import itertools
import json
import operator
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NoReturn
from xml.etree import ElementTree

import polars as pl

from erasure import normalize
from erasure.errors import ConfigError, FileMissing, InputUnusable
from erasure.job import Input, Job, Matching
from erasure.keys import Keyer, message_prefix

ITEMS_SCHEMA = pl.Schema(
    [
        ("request_id", pl.String()),
        ("key", pl.String()),  # Keyer: 32 hex
        ("db_id", pl.Int64()),
        ("matching", pl.String()),  # email | phone | profile_id | custom
        ("resource_id", pl.Int64()),  # email and phone only
        ("field_name", pl.String()),  # custom only
        ("value", pl.String()),  # normalised: what is sent
        ("value_is_int", pl.Boolean()),  # custom only: send as a JSON integer
        ("received_at", pl.Datetime("us", "UTC")),
        ("row", pl.Int64()),  # of the first occurrence
    ]
)
INVALID_SCHEMA = pl.Schema(
    [
        ("row", pl.Int64()),  # as a spreadsheet numbers it
        ("column", pl.String()),  # the user's own header; null for no_identifier
        ("reason", pl.String()),  # a code: Reason
        ("words", pl.String()),  # plain words and the fix; never the cell's value
        ("value", pl.String()),  # the raw cell: for a --rejects file only, never the ledger
        ("request_id", pl.String()),
        ("db_id", pl.Int64()),
    ]
)
USABLE_SCHEMA = pl.Schema(
    [("request_id", pl.String()), ("column", pl.String()), ("row", pl.Int64())]
)
REJECTS_COLUMNS = ("row", "column", "value", "reason", "words")  # a --rejects file's columns
REJECT_VALUE_MAX = 200  # characters of a rejected cell kept in the rejects file


class Reason(enum.StrEnum):
    """Why an input cell or row could not be used: a closed set (an ``invalid`` record's code)."""

    EMAIL_INVALID = "email_invalid"
    PHONE_INVALID = "phone_invalid"
    PROFILE_ID_INVALID = "profile_id_invalid"
    CUSTOM_INVALID = "custom_invalid"
    # A number Excel turned into 7,9E+10: the digits are lost.
    EXCEL_SCIENTIFIC = "excel_scientific"
    # No identifier in any mapped column: the request cannot be erased from this row.
    NO_IDENTIFIER = "no_identifier"
    DB_ID_INVALID = "db_id_invalid"
    RESOURCE_ID_INVALID = "resource_id_invalid"
    # The row's identifiers are kept, without a deadline.
    RECEIVED_AT_INVALID = "received_at_invalid"


@dataclass(frozen=True, slots=True)
class Counts:
    """What intake found, stage by stage (see :mod:`erasure.accounting` for the identities).

    ``rows == with_identifier + no_identifier + blank``;
    ``identifiers == valid + invalid_cells + skipped``; ``valid == pairs + duplicates``.
    """

    rows: int  # data rows read (header excluded, blank rows included)
    blank: int  # rows empty in every column the job reads: no request at all
    no_identifier: int  # rows with something, but no identifier cell: one invalid record each
    identifiers: int  # non-empty identifier cells across the mapped columns
    valid: int  # identifiers that passed validation, in rows that passed theirs
    invalid_cells: int  # identifier cells that could not be used: one invalid record each
    skipped: int  # identifier cells of rows whose db_id or resource_id is unusable
    duplicates: int  # valid identifiers whose (request id, key) was seen earlier in the file
    pairs: int  # distinct (request id, key) pairs: what a run must finish
    keys: int  # distinct keys: deletes a run sends at most
    invalid: int  # invalid records: cells, bad row values, bad dates and no_identifier rows
    requests: int  # distinct request ids named by a row (0 without a request id column)

    @property
    def with_identifier(self) -> int:
        """Rows with at least one identifier cell, usable or not."""
        return self.rows - self.blank - self.no_identifier


@dataclass(frozen=True, slots=True)
class Intake:
    path: Path
    sha256: str  # hex, of the input file's bytes
    items: pl.DataFrame  # ITEMS_SCHEMA: one row per (request_id, key), first seen first
    invalid: pl.DataFrame  # INVALID_SCHEMA, by row: the unusable cells and rows
    counts: Counts
    # (request_id, column): distinct columns that held a usable value for a request,
    # what resolves an earlier input's invalid record (no request id column: empty)
    usable: pl.DataFrame  # USABLE_SCHEMA


@dataclass(frozen=True, slots=True)
class _Spec:
    matching: Matching
    column: str
    field_name: str | None = None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the job's columns are in this file: identifier specs and the named columns."""

    specs: tuple[_Spec, ...]
    db_id: str | None
    resource_id: str | None
    request_id: str | None
    received_at: str | None

    @property
    def varying(self) -> list[str]:
        """The identity columns that can differ between rows (the rest are constant)."""
        return [
            name
            for name, varies in (
                ("request_id", self.request_id is not None),
                ("db_id", self.db_id is not None),
                ("matching", len({s.matching for s in self.specs}) > 1),
                ("resource_id", self.resource_id is not None and len(self.specs) > 0),
                ("field_name", len({s.field_name for s in self.specs}) > 1),
            )
            if varies
        ]

    @property
    def columns(self) -> list[str]:
        named: list[str | None] = [s.column for s in self.specs]
        named += [self.db_id, self.resource_id, self.request_id, self.received_at]
        return list(dict.fromkeys(c for c in named if c is not None))


def read(job: Job, keyer: Keyer, path: Path | None = None) -> Intake:
    """Read, normalise, validate, deduplicate and key the input file.

    ``path`` overrides ``job.input.path`` (``--input``). Raises
    :class:`FileMissing` (66), :class:`InputUnusable` (65) or
    :class:`ConfigError` (78, no input named at all).
    """
    source = path if path is not None else job.input.path
    if source is None:
        raise ConfigError("job file: input.path is not set; set it or pass --input")
    source = Path(source)
    table = _read_table(source, _wanted(job.input))
    layout = _layout(job.input, table.names, source.name)
    items, invalid, counts, usable = _build(table, layout, job.input, keyer)
    return Intake(
        path=source,
        sha256=table.sha256,
        items=items,
        invalid=invalid,
        counts=counts,
        usable=usable,
    )


# ---------------------------------------------------------------- columns


def _wanted(inp: Input) -> set[str]:
    """Column names the job asks for, case-folded: a hint for the delimiter sniffer."""
    cols = inp.columns
    names: list[str | None] = [cols.email, cols.phone, cols.profile_id]
    names += [c.column for c in cols.custom]
    if not cols.explicit:
        names += ["email", "phone", "profile_id"]
    names += [inp.db_id_column, inp.resource_id_column, inp.request_id_column]
    names += [inp.received_at_column]
    return {n.strip().casefold() for n in names if n}


def _layout(inp: Input, names: list[str], file: str) -> _Layout:
    cols = inp.columns
    specs: list[_Spec] = []
    if cols.explicit:
        mapped: tuple[tuple[Matching, str | None], ...] = (
            ("email", cols.email),
            ("phone", cols.phone),
            ("profile_id", cols.profile_id),
        )
        for matching, name in mapped:
            if name:
                specs.append(_Spec(matching, _find(names, name, f"input.columns.{matching}", file)))
        for custom in cols.custom:
            column = _find(names, custom.column, "input.columns.custom", file)
            specs.append(_Spec("custom", column, custom.field_name))
    else:
        defaults: tuple[Matching, ...] = ("email", "phone", "profile_id")
        for matching in defaults:
            found = [n for n in names if n.strip().casefold() == matching]
            if len(found) > 1:
                raise InputUnusable(
                    f"{file}: more than one column is named {matching} ({_list(found)});"
                    " map one in [input.columns]"
                )
            if found:
                specs.append(_Spec(matching, found[0]))
        if not specs:
            raise InputUnusable(
                f"{file} has no identifier column: none is named email, phone or profile_id"
                f" (any case); its columns are {_list(names)}; map yours in [input.columns]"
            )

    def optional(name: str | None, key: str) -> str | None:
        return None if name is None else _find(names, name, f"input.{key}", file)

    return _Layout(
        specs=tuple(specs),
        db_id=optional(inp.db_id_column, "db_id_column"),
        resource_id=optional(inp.resource_id_column, "resource_id_column"),
        request_id=optional(inp.request_id_column, "request_id_column"),
        received_at=optional(inp.received_at_column, "received_at_column"),
    )


def _find(names: list[str], wanted: str, key: str, file: str) -> str:
    """The file's column for ``wanted``: exact, else the one equal ignoring case and spaces."""
    found = [wanted] if wanted in names else []
    if not found:
        folded = wanted.strip().casefold()
        found = [n for n in names if n.strip().casefold() == folded]
    if not found:
        raise InputUnusable(
            f"{file} has no column {_shown(wanted)} (named by {key});"
            f" its columns are {_list(names)}"
        )
    if len(found) > 1 or any(
        re.fullmatch(re.escape(found[0]) + r"_duplicated_\d+", n) for n in names
    ):
        raise InputUnusable(f"{file}: column {_shown(wanted)} ({key}) appears more than once")
    return found[0]


_REDACTED = "<a value that looks like an identifier>"


def _shown(name: str) -> str:
    """A column name fit for a message: short, and never a cell that looks like data."""
    if "@" in name or len(re.findall(r"\d", name)) >= 6:
        return _REDACTED
    return repr(name if len(name) <= 40 else name[:40] + "…")


def _list(names: list[str]) -> str:
    if not names:
        return "(none)"
    shown = [_shown(n) for n in names[:20]]
    text = ", ".join(shown) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return text + (" (is the header row missing?)" if _REDACTED in shown else "")


# ---------------------------------------------------------------- cells


def _as_text(series: pl.Series, file: str) -> tuple[pl.Series, bool]:
    """A column as text, and whether it held integers (typed formats only)."""
    dtype = series.dtype
    name = _shown(series.name)
    if dtype == pl.String:
        return series, False
    if dtype == pl.Null or isinstance(dtype, pl.Categorical | pl.Enum):
        return series.cast(pl.String), False
    if dtype.is_integer():
        return series.cast(pl.String), True
    if dtype.is_float():
        values = series.fill_nan(None)
        whole = values.is_null() | ((values == values.floor()) & (values.abs() < 2.0**53))
        if not whole.all():
            raise InputUnusable(
                f"{file}: column {name} holds fractional numbers;"
                " identifiers must be text or whole numbers"
            )
        return values.cast(pl.Int64).cast(pl.String), True
    raise InputUnusable(
        f"{file}: column {name} holds values of type {dtype}; expected text or whole numbers"
    )


def _positive_ints(text: pl.Series, what: str, required: bool) -> pl.DataFrame:
    """Columns ``<what>`` (Int64), ``<what>_raw`` and ``<what>_reason``."""
    clean = normalize.texts(text).get_column("value")
    frame = pl.DataFrame({"raw": text, "clean": clean})
    ok = pl.col("clean").str.contains(r"^[0-9]{1,18}$")
    value = pl.when(ok).then(pl.col("clean").cast(pl.Int64))
    empty = pl.col("clean").is_null()
    reason = (
        pl.when(empty & required)
        .then(pl.lit(f"{what} is empty: the row is skipped"))
        .when(~empty & ~(ok & (value > 0)))
        .then(pl.lit(f"{what} is not a positive integer: the row is skipped"))
    )
    return frame.select(
        value.alias(what), pl.col("raw").alias(f"{what}_raw"), reason.alias(f"{what}_reason")
    )


def _moments(series: pl.Series, file: str) -> pl.DataFrame:
    """Columns ``received_at`` (UTC), ``received_at_raw`` and ``received_at_reason``."""
    utc = pl.Datetime("us", "UTC")
    if isinstance(series.dtype, pl.Date | pl.Datetime):
        moments = series.cast(pl.Datetime("us")) if series.dtype == pl.Date else series
        tz = getattr(moments.dtype, "time_zone", None)
        moments = moments.dt.replace_time_zone("UTC") if tz is None else moments
        return pl.DataFrame(
            {
                "received_at": moments.dt.convert_time_zone("UTC").cast(utc),
                "received_at_raw": series.cast(pl.String),
                "received_at_reason": pl.repeat(None, series.len(), dtype=pl.String, eager=True),
            }
        )
    text, _ = _as_text(series, file)
    distinct = text.drop_nulls().unique().to_list()
    parsed: list[datetime | None] = []
    bad: list[bool] = []
    for value in distinct:
        try:
            parsed.append(normalize.received_at(value) if normalize.clean(value) else None)
            bad.append(False)
        except normalize.Invalid:
            parsed.append(None)
            bad.append(True)
    table = pl.DataFrame(
        {"raw": distinct, "received_at": parsed, "bad": bad},
        schema={"raw": pl.String, "received_at": utc, "bad": pl.Boolean},
    )
    reason = "received_at is not a date: the row's identifiers are kept, without a deadline"
    return (
        text.rename("raw")
        .to_frame()
        .join(table, on="raw", how="left", maintain_order="left")
        .select(
            "received_at",
            received_at_raw="raw",
            received_at_reason=pl.when("bad").then(pl.lit(reason)),
        )
    )


# ---------------------------------------------------------------- assembly
#
# Memory: ten million rows and the run's plan must fit in 1.5 GiB, where the
# raw cells of one column alone are about 0.4 GiB, and so are their
# normalised values. So the steps below share buffers rather than copy them
# (polars frames share their columns; a filter that keeps every row copies
# nothing), a column that is the same on every row is a literal (one value,
# whatever the height), and the raw cells are let go once normalised: only
# the rejected ones are kept, for the rejects file.

_KEY_CHUNK = 1 << 18  # values keyed at a time: their Python strings live only that long
_SHARED = ("row", "request_id", "db_id", "resource_id", "received_at")  # of every cell of a row


@dataclass(frozen=True, slots=True)
class _Cells:
    """A file's identifier cells, as intake uses them."""

    valid: pl.DataFrame  # valid cells of rows that passed their checks, by row then column
    rejected: pl.DataFrame  # invalid cells of those rows: row, column, shown, code, raw, reason
    count: int  # non-empty cells, in any row
    seen: pl.DataFrame  # per input row: ``cell`` (it has a non-empty one), ``valid`` (a valid one)


def _build(
    table: _Table, layout: _Layout, inp: Input, keyer: Keyer
) -> tuple[pl.DataFrame, pl.DataFrame, Counts, pl.DataFrame]:
    """Items, invalid records, counts and usable columns of the file.

    The file is read here so that its cells can go early.
    """
    frame = table.collect(layout.columns)
    rows = _row_frame(frame, table, layout, inp)
    cells = _cells(frame, rows, table, layout, inp)
    blank = _blank(frame, layout)
    n = frame.height
    del frame  # every raw cell: the rejected ones' text is in cells.rejected
    invalid = _invalid(rows, cells, layout, blank)
    requests = (
        int(rows.lazy().select(pl.col("request_id").drop_nulls().n_unique()).collect().item())
        if layout.request_id is not None
        else 0
    )
    usable = _usable(rows, cells, layout)
    del rows
    valid, identifiers = cells.valid.height, cells.count
    invalid_cells = cells.rejected.height
    varying = layout.varying
    # a filter that keeps every row copies nothing (unique would copy them all)
    items = cells.valid.filter(_firsts(cells.valid, [*varying, "value"]))
    del cells  # items shares its columns, or holds a copy without the repeats
    items = _keyed(items, keyer, [c for c in varying if c != "request_id"])
    # Lazily, and cast only if need be: the eager forms can copy a column held
    # in chunks (the keys and values are) into one.
    items = items.lazy().select(ITEMS_SCHEMA.names()).collect()
    if items.schema != ITEMS_SCHEMA:
        items = items.cast(ITEMS_SCHEMA)
    # items are distinct per (request id, key): without request ids, per key
    keys = int(_firsts(items, ["key"]).sum()) if "request_id" in varying else items.height
    no_identifier = int(invalid.get_column("reason").eq(Reason.NO_IDENTIFIER.value).sum())
    counts = Counts(
        rows=n,
        blank=int(blank.sum()),
        no_identifier=no_identifier,
        identifiers=identifiers,
        valid=valid,
        invalid_cells=invalid_cells,
        skipped=identifiers - valid - invalid_cells,
        duplicates=valid - items.height,
        pairs=items.height,
        keys=keys,
        invalid=invalid.height,
        requests=requests,
    )
    return items, invalid, counts, usable


def _usable(rows: pl.DataFrame, cells: _Cells, layout: _Layout) -> pl.DataFrame:
    """(request_id, column) of every column that held a usable value for a request."""
    schema = USABLE_SCHEMA
    if layout.request_id is None:
        return pl.DataFrame(schema=schema)
    valid = cells.valid.group_by("request_id", "order").agg(pl.col("row").min())
    names = [s.column for s in layout.specs]
    parts = [
        valid.select(
            "request_id",
            column=pl.col("order").replace_strict(list(range(len(names))), names),
            row="row",
        )
    ]
    kept = valid.group_by("request_id").agg(pl.col("row").min())
    for column in (layout.db_id, layout.resource_id):
        if column is not None:
            parts.append(kept.with_columns(column=pl.lit(column)))
    if layout.received_at is not None:
        dated = rows.filter(pl.col("received_at").is_not_null())
        dated = dated.group_by("request_id").agg(pl.col("row").min())
        parts.append(dated.with_columns(column=pl.lit(layout.received_at)))
    found = pl.concat([p.select(schema.names()).cast(schema) for p in parts])
    found = found.filter(pl.col("request_id").is_not_null())
    return found.group_by("request_id", "column", maintain_order=True).agg(pl.col("row").min())


def _blank(frame: pl.DataFrame, layout: _Layout) -> pl.Series:
    """Per row: every column the job reads is empty (or only spaces and invisible marks)."""
    strip = normalize.WHITESPACE + "".join(normalize.INVISIBLE)
    empty = [
        pl.col(c).cast(pl.String).str.strip_chars(strip).fill_null("").eq("")
        for c in layout.columns
    ]
    return frame.select(pl.all_horizontal(empty).alias("blank")).to_series()


def _row_frame(frame: pl.DataFrame, table: _Table, layout: _Layout, inp: Input) -> pl.DataFrame:
    """One row per input row: its number and the columns every identifier shares.

    Each checked column comes with ``<what>_raw`` and ``<what>_reason``. One
    the file does not have is a literal: the job's fixed value, or null.
    """
    parts = [pl.DataFrame({"row": table.row_numbers(frame.height)})]
    fixed: dict[str, pl.Expr] = {}
    if layout.request_id is not None:
        request, _ = _as_text(frame.get_column(layout.request_id), table.file)
        parts.append(normalize.texts(request).select(request_id="value"))
    else:
        fixed["request_id"] = pl.lit(None, pl.String)
    for what, column, value, required in (
        ("db_id", layout.db_id, inp.db_id, True),
        ("resource_id", layout.resource_id, inp.resource_id, False),
    ):
        if column is not None:
            text, _ = _as_text(frame.get_column(column), table.file)
            parts.append(_positive_ints(text, what, required))
        else:
            fixed[what] = pl.lit(value, pl.Int64)
            fixed[f"{what}_raw"] = fixed[f"{what}_reason"] = pl.lit(None, pl.String)
    if layout.received_at is not None:
        parts.append(_moments(frame.get_column(layout.received_at), table.file))
    else:
        fixed["received_at"] = pl.lit(None, pl.Datetime("us", "UTC"))
        fixed["received_at_raw"] = fixed["received_at_reason"] = pl.lit(None, pl.String)
    return pl.concat(parts, how="horizontal").with_columns(**fixed)


def _cells(
    frame: pl.DataFrame, rows: pl.DataFrame, table: _Table, layout: _Layout, inp: Input
) -> _Cells:
    """The identifier cells, column by column, in row order then column order."""
    row_bad = pl.col("db_id_reason").is_not_null() | pl.col("resource_id_reason").is_not_null()
    valid: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    seen = rows.select(cell=pl.lit(False), valid=pl.lit(False))
    count = 0
    for order, spec in enumerate(layout.specs):
        text, is_int = _as_text(frame.get_column(spec.column), table.file)
        if spec.matching == "email":
            found = normalize.emails(text)
        elif spec.matching == "phone":
            found = normalize.phones(text, inp.phone_region)
        else:
            found = normalize.texts(text)
        cells = pl.concat([rows, found, text.rename("raw").to_frame()], how="horizontal")
        flags = cells.select(
            cell=pl.col("value").is_not_null() | pl.col("reason").is_not_null(),
            valid=pl.col("value").is_not_null() & ~row_bad,
            rejected=pl.col("reason").is_not_null() & ~row_bad,
        )
        count += int(flags.get_column("cell").sum())
        seen = seen.select(pl.col(c) | flags.get_column(c) for c in ("cell", "valid"))
        with_resource = spec.matching in ("email", "phone")
        valid.append(
            cells.select(*_SHARED, "value")
            .filter(flags.get_column("valid"))
            .with_columns(
                order=pl.lit(order, pl.Int32),
                matching=pl.lit(spec.matching),
                field_name=pl.lit(spec.field_name, pl.String),
                value_is_int=pl.lit(is_int and spec.matching == "custom"),
                resource_id=pl.col("resource_id") if with_resource else pl.lit(None, pl.Int64),
            )
        )
        rejected.append(
            cells.select("row", "raw", "reason")
            .filter(flags.get_column("rejected"))
            .with_columns(
                column=pl.lit(spec.column),
                shown=pl.lit(_shown(spec.column)),
                code=pl.lit(_CELL_REASONS[spec.matching].value),
                order=pl.lit(order + 10, pl.Int32),
            )
        )
    every = pl.concat(valid)
    if len(valid) > 1:
        every = every.sort("row", "order", maintain_order=True)
    return _Cells(every, pl.concat(rejected), count, seen)


_CELL_REASONS = {
    "email": Reason.EMAIL_INVALID,
    "phone": Reason.PHONE_INVALID,
    "profile_id": Reason.PROFILE_ID_INVALID,
    "custom": Reason.CUSTOM_INVALID,
}
# 7,9E+10 or 7.9e10: what Excel shows, and exports, for a long number in a General column
_SCIENTIFIC = r"^\s*[0-9]+(?:[.,][0-9]+)?[eE]\+?[0-9]+\s*$"
_SCIENTIFIC_WORDS = (
    "holds a number in Excel's scientific notation (digits, then E+ and a power of ten),"
    " whose last digits are lost: format the column as text and export again"
)
_DATE_WORDS = (
    "is not a date; accepted: 2024-05-01, 2024-05-01 10:00, 2024-05-01T10:00:00+03:00"
    " (ISO 8601) or 01.05.2024 [10:00[:00]]; the row's identifiers are kept, without a deadline"
)


def _invalid(rows: pl.DataFrame, cells: _Cells, layout: _Layout, blank: pl.Series) -> pl.DataFrame:
    """The invalid records, by row: bad cells, bad row values, bad dates, rows without identifier.

    ``words`` name the user's own header and the fix, never the cell.
    """
    rejected = cells.rejected
    scientific = pl.col("raw").str.contains(_SCIENTIFIC).fill_null(False)
    parts = [
        rejected.select(
            "row",
            "column",
            reason=pl.when(scientific)
            .then(pl.lit(Reason.EXCEL_SCIENTIFIC.value))
            .otherwise("code"),
            words=pl.format("column {} ", "shown")
            + pl.when(scientific).then(pl.lit(_SCIENTIFIC_WORDS)).otherwise("reason"),
            value="raw",
            order="order",
        )
    ]
    checks = (
        ("db_id", layout.db_id, "cell", 0, Reason.DB_ID_INVALID),
        ("resource_id", layout.resource_id, "cell", 1, Reason.RESOURCE_ID_INVALID),
        ("received_at", layout.received_at, "valid", 2, Reason.RECEIVED_AT_INVALID),
    )
    for what, column, having, order, code in checks:
        if column is None:
            continue
        bad = pl.col(f"{what}_reason").is_not_null() & cells.seen.get_column(having)
        words = _DATE_WORDS if code is Reason.RECEIVED_AT_INVALID else None
        parts.append(
            rows.filter(bad).select(
                "row",
                column=pl.lit(column, pl.String),
                reason=pl.lit(code.value),
                words=pl.lit(f"column {_shown(column)} ")
                + (pl.lit(words) if words else pl.col(f"{what}_reason")),
                value=f"{what}_raw",
                order=pl.lit(order, pl.Int32),
            )
        )
    headers = ", ".join(_shown(s.column) for s in layout.specs)
    lonely = ~cells.seen.get_column("cell") & ~blank
    parts.append(
        rows.filter(lonely).select(
            "row",
            column=pl.lit(None, pl.String),
            reason=pl.lit(Reason.NO_IDENTIFIER.value),
            words=pl.lit(
                f"no identifier in any of the columns {headers}: nothing can be erased"
                " for this row; fill one in and run again"
            ),
            value=pl.lit(None, pl.String),
            order=pl.lit(20, pl.Int32),
        )
    )
    long = pl.col("value").str.len_chars() > REJECT_VALUE_MAX
    shortened = pl.col("value").str.slice(0, REJECT_VALUE_MAX) + pl.format(
        "… ({} characters)", pl.col("value").str.len_chars()
    )
    found = pl.concat(parts).sort("row", "order", maintain_order=True)
    shared = rows.select("row", "request_id", "db_id")
    found = found.join(shared, on="row", how="left", maintain_order="left")
    return found.select(
        "row",
        "column",
        "reason",
        "words",
        pl.when(long).then(shortened).otherwise("value").alias("value"),
        "request_id",
        "db_id",
    ).cast(INVALID_SCHEMA)


def _firsts(frame: pl.DataFrame, subset: list[str]) -> pl.Series:
    """Whether each row is the first with its values of ``subset``: exact ``is_first_distinct``.

    Told by 64-bit hashes first: a row whose hash is new is the first of its
    values, and only rows whose hash repeats are compared whole. Compared
    whole, ten million rows of two columns take over 1 GiB (polars encodes
    each row), where their hashes take 0.2 GiB (one per column, combined:
    hashing the row as a struct takes twice that).
    """
    whole = pl.struct(subset) if len(subset) > 1 else pl.col(subset[0])
    each = (pl.col(c).hash(seed=i) for i, c in enumerate(subset))
    hashes = frame.lazy().select(functools.reduce(operator.xor, each)).collect().to_series()
    first = hashes.is_first_distinct()
    if first.all():
        return first
    again = hashes.is_duplicated()
    exact = frame.select(subset).filter(again).select(whole.is_first_distinct()).to_series()
    return first.scatter(again.arg_true(), exact)


def _keyed(items: pl.DataFrame, keyer: Keyer, varying: list[str]) -> pl.DataFrame:
    """``items`` with a ``key`` column, computed per group of equal message prefix.

    ``varying`` names the prefix columns that are not the same on every row.
    """
    if not items.height:
        return items.with_columns(key=pl.lit(None, pl.String))
    if not varying:  # one prefix for all: no grouping, no reordering
        return items.with_columns(key=_keys(items, keyer))
    identity = items.select("db_id", "matching", "resource_id", "field_name", "value")
    groups = identity.with_row_index("i").group_by(varying, maintain_order=True)
    keys = pl.concat(part.select("i", key=_keys(part, keyer)) for _, part in groups)
    return items.with_columns(key=keys.sort("i").get_column("key"))


def _keys(part: pl.DataFrame, keyer: Keyer) -> pl.Series:
    """Keys of ``part``, whose rows share db_id, matching, resource_id and field_name.

    A chunk at a time: the values and keys as Python strings (about 150
    bytes a value) exist for one chunk only, not for ten million values.
    """
    first = part.row(0, named=True)
    prefix = message_prefix(
        first["db_id"], first["matching"], first["resource_id"], first["field_name"]
    )
    values = part.get_column("value")
    return pl.concat(
        pl.Series("key", keyer.keys(prefix, values.slice(start, _KEY_CHUNK).to_list()), pl.String)
        for start in range(0, values.len(), _KEY_CHUNK)
    )


# ---------------------------------------------------------------- readers

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_CHUNK = 1 << 20  # bytes read at a time
_SAMPLE = 1 << 16  # bytes looked at to sniff the encoding and delimiter
_MAGIC = {
    b"PK\x03\x04": "a ZIP file (an XLSX workbook?)",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 (.xls) or password-protected workbook",
    b"\x1f\x8b": "gzip-compressed",
    b"%PDF": "a PDF document",
}
_RUSSIAN = re.compile("[А-яЁёІіЇїЄєҐґЎў«»—–№\u00a0“”„‘’…•°]")
_CYRILLIC_WORD = re.compile(r"\w*[А-яЁё]\w*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class _Table:
    """A file opened lazily: its columns known, its cells not yet read."""

    file: str  # the file's name, for messages
    sha256: str
    frame: pl.LazyFrame
    names: list[str]
    what: str  # how it was read, for messages: "CSV (cp1251, delimiter ';')"
    first_row: int  # row number of the first record
    lines: list[int] | None = None  # NDJSON: the line number of each record

    def collect(self, columns: list[str]) -> pl.DataFrame:
        try:
            return self.frame.select(columns).collect()
        except pl.exceptions.PolarsError:
            raise InputUnusable(
                f"{self.file} cannot be read as {self.what}: it is damaged or malformed"
                " (a quote that never closes?)"
            ) from None

    def row_numbers(self, n: int) -> pl.Series:
        if self.lines is not None:
            return pl.Series(self.lines, dtype=pl.Int64)
        return pl.int_range(self.first_row, self.first_row + n, dtype=pl.Int64, eager=True)


def _read_table(path: Path, wanted: set[str]) -> _Table:
    try:
        with path.open("rb") as f:
            head = f.read(_SAMPLE)
    except FileNotFoundError:
        raise FileMissing(f"input file {path} does not exist") from None
    except IsADirectoryError:
        raise FileMissing(f"input file {path} is a directory, not a file") from None
    except OSError as exc:
        raise InputUnusable(f"input file {path} cannot be read: {exc.strerror}") from None
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputUnusable(
            f"{path.name}: unsupported file type {path.suffix or '(no suffix)'!r};"
            " use .csv, .tsv, .parquet, .xlsx, .ndjson or .jsonl"
        )
    if not head:
        raise InputUnusable(f"{path.name} is empty")
    try:
        if kind == "xlsx":
            return _xlsx(path, head)
        if kind == "parquet":
            return _parquet(path, head)
        for magic, what in _MAGIC.items():
            if head.startswith(magic):
                raise InputUnusable(f"{path.name} is {what}, not {kind.upper()} text")
        if kind == "ndjson":
            return _ndjson(path)
        return _csv(path, head, wanted)
    except OSError as exc:  # read once, then failing: a disk error, a file removed
        raise InputUnusable(f"input file {path} cannot be read: {exc.strerror}") from None


def _digest(path: Path, check_utf8: bool) -> tuple[str, bool]:
    """The file's SHA-256 (hex) and, when asked, whether it is valid UTF-8."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = check_utf8
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return digest.hexdigest(), utf8


def _schema(frame: pl.LazyFrame, file: str, what: str) -> list[str]:
    try:
        return frame.collect_schema().names()
    except pl.exceptions.NoDataError:
        raise InputUnusable(f"{file} has no header row") from None
    except pl.exceptions.PolarsError:
        raise InputUnusable(f"{file} cannot be read as {what}") from None


def _csv(path: Path, head: bytes, wanted: set[str]) -> _Table:
    sha256, utf8 = _digest(path, check_utf8=True)
    source: Path | bytes = path
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = path.read_bytes().decode("utf-16")
        except UnicodeDecodeError:
            raise InputUnusable(f"{path.name} starts like UTF-16 text but is not") from None
        encoding, source, sample = "UTF-16", text.encode(), text[:_SAMPLE]
    elif b"\x00" in head:
        raise InputUnusable(f"{path.name} holds NUL bytes: it is a binary file, not CSV text")
    elif utf8:
        encoding = "UTF-8"
        sample = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")
    else:
        decoded = _cp1251(path.read_bytes())
        if decoded is None:
            raise InputUnusable(
                f"{path.name} is neither UTF-8 nor Windows-1251 (cp1251) text; save it as CSV UTF-8"
            )
        text = decoded
        encoding, source, sample = "cp1251", text.encode(), text[:_SAMPLE]
    if len(_CONTROL.findall(sample)) > 8 + len(sample) // 1000:  # a stray ^Z is no reason
        raise InputUnusable(f"{path.name} holds control characters: it is not CSV text")
    truncated = path.stat().st_size > _SAMPLE
    separator = _sniff(sample, wanted, path.suffix.lower() == ".tsv", truncated)
    what = f"CSV ({encoding}, delimiter {separator!r})"
    frame = pl.scan_csv(
        source,
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=True,
        quote_char='"',
    )
    names = _schema(frame, path.name, what)
    if not any(n.strip() for n in names):
        raise InputUnusable(f"{path.name} has no header row")
    return _Table(path.name, sha256, frame, names, what, first_row=2)


def _cp1251(data: bytes) -> str | None:
    """``data`` as Windows-1251 text when it plausibly is (mostly Cyrillic), else None."""
    try:
        text = data.decode("cp1251")
    except UnicodeDecodeError:
        return None
    sample = text[: 4 * _CHUNK]
    foreign = [c for c in sample if ord(c) > 0x7F]
    russian = len(_RUSSIAN.findall(sample))
    if not foreign or russian < 0.9 * len(foreign):
        return None
    # Latin-1 read as cp1251 turns "José" into "Josй": Latin and Cyrillic in one word
    words = _CYRILLIC_WORD.findall(sample)
    mixed = sum(1 for w in words if re.search("[A-Za-z]", w))
    return None if mixed > 0.1 * len(words) else text


def _sniff(sample: str, wanted: set[str], tsv: bool, truncated: bool) -> str:
    """The delimiter that best splits the header and the first rows alike.

    The header that holds the most of the job's column names wins; then one
    that splits into several columns, with the rows agreeing, and the most
    columns; ties go to the usual order (tab first for .tsv).
    """
    candidates = ["\t", ",", ";", "|"] if tsv else [",", ";", "\t", "|"]
    best: tuple[tuple[int, bool, bool, int, int], str] | None = None
    for rank, separator in enumerate(candidates):
        try:
            rows = list(itertools.islice(csv.reader(io.StringIO(sample), delimiter=separator), 50))
        except csv.Error:
            continue
        if truncated and len(rows) > 1:
            rows = rows[:-1]  # probably cut short by the sample
        if not rows:
            continue
        header, data = rows[0], [r for r in rows[1:] if r]
        n = len(header)
        agree = sum(len(r) == n for r in data) >= 0.9 * len(data)
        found = sum(h.strip().casefold() in wanted for h in header)
        score = (found, n > 1, agree, n, -rank)
        if best is None or score > best[0]:
            best = (score, separator)
    return candidates[0] if best is None else best[1]


def _parquet(path: Path, head: bytes) -> _Table:
    if not head.startswith(b"PAR1"):
        raise InputUnusable(f"{path.name} is not a Parquet file")
    sha256, _ = _digest(path, check_utf8=False)
    frame = pl.scan_parquet(path)
    names = _schema(frame, path.name, "Parquet")
    return _Table(path.name, sha256, frame, names, "Parquet", first_row=2)


def _xlsx(path: Path, head: bytes) -> _Table:
    if not head.startswith(b"PK\x03\x04"):
        for magic, what in _MAGIC.items():
            if head.startswith(magic):
                raise InputUnusable(f"{path.name} is {what}, not an XLSX workbook")
        raise InputUnusable(f"{path.name} is not an XLSX workbook")
    sha256, _ = _digest(path, check_utf8=False)
    try:
        frame = pl.read_excel(
            path,
            engine="calamine",
            sheet_id=1,
            infer_schema_length=None,
            drop_empty_rows=False,
            drop_empty_cols=False,
            raise_if_empty=False,
        )
    except Exception:  # fastexcel's errors are not polars'
        raise InputUnusable(f"{path.name} cannot be read as an XLSX workbook") from None
    if not frame.columns:
        raise InputUnusable(f"{path.name}: the first sheet is empty")
    first = _xlsx_first_row(path) + 1
    return _Table(path.name, sha256, frame.lazy(), frame.columns, "XLSX", first_row=first)


def _xlsx_first_row(path: Path) -> int:
    """The row number of the first sheet's first cell with a value (the header), or 1."""
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    try:
        with zipfile.ZipFile(path) as z:
            book = ElementTree.fromstring(z.read("xl/workbook.xml"))
            sheet = book.find(f"{ns}sheets/{ns}sheet")
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            target = next(
                r.get("Target", "")
                for r in rels
                if sheet is not None and r.get("Id") == sheet.get(rel)
            )
            name = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            with z.open(name) as f:
                for _, element in ElementTree.iterparse(f):
                    if element.tag == f"{ns}c" and (
                        element.find(f"{ns}v") is not None or element.find(f"{ns}is") is not None
                    ):
                        m = re.search(r"\d+", element.get("r", ""))
                        return int(m.group()) if m else 1
    except (OSError, KeyError, StopIteration, ElementTree.ParseError, zipfile.BadZipFile):
        pass
    return 1


def _ndjson(path: Path) -> _Table:
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputUnusable(f"{path.name} is not UTF-8 text (JSON must be UTF-8)") from None
    if not data.strip():
        raise InputUnusable(f"{path.name} holds no JSON lines")
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except pl.exceptions.PolarsError:
        _ndjson_problem(path.name, data)
    lines: list[int] | None = None
    body = data.rstrip(b" \t\r\n")
    if re.search(rb"(?:^|\n)[ \t\r]*\n", body):
        lines = [i for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    return _Table(path.name, sha256, frame.lazy(), frame.columns, "NDJSON", 1, lines)


def _ndjson_problem(file: str, data: bytes) -> NoReturn:
    """Raise :class:`InputUnusable` naming the first line that is not a JSON object.

    Called when polars cannot read the file; when every line is an object,
    the problem is a field whose kind differs between lines.
    """
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise InputUnusable(f"{file}: line {number} is not valid JSON") from None
        if not isinstance(value, dict):
            raise InputUnusable(f"{file}: line {number} is not a JSON object")
    raise InputUnusable(
        f"{file} cannot be read: a field holds values of different kinds on different lines"
        " (for example numbers on some and true/false on others)"
    )
