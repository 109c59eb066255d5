"""Rows and cells into items, invalid records and counts: dedupe, keys."""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import polars as pl

from erasure.intake import normalize, received, repair
from erasure.intake.cells import as_text, moments, positive_ints
from erasure.intake.layout import Layout, shown
from erasure.intake.readers import Table
from erasure.intake.shapes import (
    INVALID_SCHEMA,
    ITEMS_SCHEMA,
    REJECT_VALUE_MAX,
    REPAIRS_SCHEMA,
    USABLE_SCHEMA,
    Counts,
    Reason,
)
from erasure.job import Input
from erasure.keys import Keyer, message_prefix

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
    repairs: pl.DataFrame  # REPAIRS_SCHEMA: cells read after a repair (erasure.intake.repair)


def build(
    table: Table, layout: Layout, inp: Input, keyer: Keyer
) -> tuple[pl.DataFrame, pl.DataFrame, Counts, pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Items, invalid records, counts, usable columns, received dates and repaired cells.

    The file is read here so that its cells can go early. The received dates
    are each request's earliest usable one (:mod:`erasure.intake.received`),
    None without a received_at column.
    """
    frame = table.collect(layout.columns)
    rows = _row_frame(frame, table, layout, inp)
    cells = _cells(frame, rows, table, layout, inp)
    blank = _blank(frame, layout)
    dates = received.earliest(rows) if layout.received_at is not None else None
    n = frame.height
    del frame  # every raw cell: the rejected ones' text is in cells.rejected
    undated = received.undated(rows, dates) & ~blank if dates is not None else None
    invalid = _invalid(rows, cells, layout, blank, undated)
    if dates is not None:
        invalid = received.apply(invalid, dates)
    requests = (
        int(rows.lazy().select(pl.col("request_id").drop_nulls().n_unique()).collect().item())
        if layout.request_id is not None
        else 0
    )
    usable = _usable(rows, cells, layout)
    del rows
    valid, identifiers = cells.valid.height, cells.count
    invalid_cells = cells.rejected.height
    repairs = cells.repairs
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
    if dates is not None:  # each request's pairs carry its earliest usable received_at
        items = received.apply(items, dates)
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
    return items, invalid, counts, usable, dates, repairs


def _usable(rows: pl.DataFrame, cells: _Cells, layout: Layout) -> pl.DataFrame:
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


def _blank(frame: pl.DataFrame, layout: Layout) -> pl.Series:
    """Per row: every column the job reads is empty (or only spaces and invisible marks)."""
    strip = normalize.WHITESPACE + "".join(normalize.INVISIBLE)
    empty = [
        pl.col(c).cast(pl.String).str.strip_chars(strip).fill_null("").eq("")
        for c in layout.columns
    ]
    return frame.select(pl.all_horizontal(empty).alias("blank")).to_series()


def _row_frame(frame: pl.DataFrame, table: Table, layout: Layout, inp: Input) -> pl.DataFrame:
    """One row per input row: its number and the columns every identifier shares.

    Each checked column comes with ``<what>_raw`` and ``<what>_reason``. One
    the file does not have is a literal: the job's fixed value, or null.
    """
    parts = [pl.DataFrame({"row": table.row_numbers(frame.height)})]
    fixed: dict[str, pl.Expr] = {}
    if layout.request_id is not None:
        request, _ = as_text(frame.get_column(layout.request_id), table.file)
        parts.append(normalize.texts(request).select(request_id="value"))
    else:
        fixed["request_id"] = pl.lit(None, pl.String)
    for what, column, value, required in (
        ("db_id", layout.db_id, inp.db_id, True),
        ("resource_id", layout.resource_id, inp.resource_id, False),
    ):
        if column is not None:
            text, _ = as_text(frame.get_column(column), table.file)
            parts.append(positive_ints(text, what, required))
        else:
            fixed[what] = pl.lit(value, pl.Int64)
            fixed[f"{what}_raw"] = fixed[f"{what}_reason"] = pl.lit(None, pl.String)
    if layout.received_at is not None:
        parts.append(
            moments(frame.get_column(layout.received_at), table.file, inp.deadline.timezone)
        )
    else:
        fixed["received_at"] = pl.lit(None, pl.Datetime("us", "UTC"))
        fixed["received_at_raw"] = fixed["received_at_reason"] = pl.lit(None, pl.String)
    return pl.concat(parts, how="horizontal").with_columns(**fixed)


def _cells(
    frame: pl.DataFrame, rows: pl.DataFrame, table: Table, layout: Layout, inp: Input
) -> _Cells:
    """The identifier cells, column by column, in row order then column order."""
    row_bad = pl.col("db_id_reason").is_not_null() | pl.col("resource_id_reason").is_not_null()
    valid: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    repairs: list[pl.DataFrame] = [pl.DataFrame(schema=REPAIRS_SCHEMA)]
    seen = rows.select(cell=pl.lit(False), valid=pl.lit(False))
    count = 0
    split = False
    for order, spec in enumerate(layout.specs):
        text, is_int = as_text(frame.get_column(spec.column), table.file)
        found = _read_cells(text, spec.matching, inp)
        cells = pl.concat([rows, found, text.rename("raw").to_frame()], how="horizontal")
        flags = cells.select(
            cell=pl.col("value").is_not_null() | pl.col("reason").is_not_null(),
            valid=pl.col("value").is_not_null() & ~row_bad,
            rejected=pl.col("reason").is_not_null() & ~row_bad,
        )
        # a cell split into several addresses holds that many identifiers
        extra = cells.get_column("extra").list.len().fill_null(0)
        count += int(flags.get_column("cell").sum()) + int(extra.sum())
        seen = seen.select(pl.col(c) | flags.get_column(c) for c in ("cell", "valid"))
        with_resource = spec.matching in ("email", "phone")
        # the columns kept, then the rows: a filter of every column would copy the raw cells
        mine = cells.select(*_SHARED, "value", "extra").filter(flags.get_column("valid"))
        if int(mine.get_column("extra").list.len().fill_null(0).sum()):
            split = True
            more = mine.select(*_SHARED, value="extra").drop_nulls("value").explode("value")
            mine = pl.concat([mine.select(*_SHARED, "value"), more])
        repairs.append(
            cells.select("row", "repair", "value")
            .filter(pl.col("repair").is_not_null() & pl.col("value").is_not_null())
            .select("row", column=pl.lit(spec.column), kind=pl.col("repair").str.split(","))
            .explode("kind")
        )
        valid.append(
            mine.select(*_SHARED, "value").with_columns(
                order=pl.lit(order, pl.Int32),
                matching=pl.lit(spec.matching),
                field_name=pl.lit(spec.field_name, pl.String),
                value_is_int=pl.lit(is_int and spec.matching == "custom"),
                resource_id=pl.col("resource_id") if with_resource else pl.lit(None, pl.Int64),
            )
        )
        rejected.append(
            cells.select("row", "raw", "reason", "code")
            .filter(flags.get_column("rejected"))
            .with_columns(
                column=pl.lit(spec.column),
                shown=pl.lit(shown(spec.column)),
                code=pl.col("code").fill_null(pl.lit(_CELL_REASONS[spec.matching].value)),
                order=pl.lit(order + 10, pl.Int32),
            )
        )
    every = pl.concat(valid)
    if len(valid) > 1 or split:
        every = every.sort("row", "order", maintain_order=True)
    found = pl.concat(repairs).cast(REPAIRS_SCHEMA).sort("row", maintain_order=True)
    return _Cells(every, pl.concat(rejected), count, seen, found)


def _read_cells(text: pl.Series, matching: str, inp: Input) -> pl.DataFrame:
    """``value``, ``reason``, ``code``, ``repair``, ``extra`` (:data:`repair.CELL_SCHEMA`)."""
    if matching == "email":
        return repair.emails(text, split=inp.split_addresses)
    if matching == "phone":
        return repair.phones(text, inp.phone_region)
    return normalize.texts(text).with_columns(
        code=pl.lit(None, pl.String),
        repair=pl.lit(None, pl.String),
        extra=pl.lit(None, pl.List(pl.String)),
    )


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


def _invalid(
    rows: pl.DataFrame,
    cells: _Cells,
    layout: Layout,
    blank: pl.Series,
    undated: pl.Series | None = None,
) -> pl.DataFrame:
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
        seen = cells.seen.get_column(having)
        if code is Reason.RECEIVED_AT_INVALID and undated is not None:
            seen = seen | undated  # its request has no usable date: a deadline unknown
        bad = pl.col(f"{what}_reason").is_not_null() & seen
        words = _DATE_WORDS if code is Reason.RECEIVED_AT_INVALID else None
        parts.append(
            rows.filter(bad).select(
                "row",
                column=pl.lit(column, pl.String),
                reason=pl.lit(code.value),
                words=pl.lit(f"column {shown(column)} ")
                + (pl.lit(words) if words else pl.col(f"{what}_reason")),
                value=f"{what}_raw",
                order=pl.lit(order, pl.Int32),
            )
        )
    headers = ", ".join(shown(s.column) for s in layout.specs)
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
    shared = rows.select("row", "request_id", "db_id", "received_at")
    found = found.join(shared, on="row", how="left", maintain_order="left")
    return found.select(
        "row",
        "column",
        "reason",
        "words",
        pl.when(long).then(shortened).otherwise("value").alias("value"),
        "request_id",
        "db_id",
        "received_at",
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
