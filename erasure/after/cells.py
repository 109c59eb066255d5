"""A file's identifier cells, normalised and keyed as the intake keys them.

Shared by ``screen`` (a new import file) and ``sweep`` (an Altcraft export):
the file is opened by the intake's own reader (any format ``run`` reads),
each mapped column is normalised by :mod:`erasure.intake.normalize`, and each
distinct normalised value is keyed under every (db_id, resource_id, field)
combination that finished requests used, so that a match means the very
key the ledger recorded.

The intake has no public name for its reader yet; its private one is used
here, so that the formats, encodings and delimiter sniffing are the same
code (a public alias is a one-line change when the intake settles).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from erasure.errors import InputUnusable
from erasure.intake import Table, as_text, find_column, normalize, read_table
from erasure.job import Columns, Matching
from erasure.keys import Keyer, message_prefix

__all__ = ["Identity", "Spec", "finished_identities", "normalised", "open_file", "specs_of"]

# The last outcome of each (request id, key) pair, and the identity its plan gave the key.
_FINISHED_SQL = """
    WITH sweeps AS (  -- a sweep's deletes are no input's pairs (erasure.after.sweep)
        SELECT run FROM events
        WHERE kind = 'run_started' AND json_extract(detail, '$.command') = 'sweep'
    ), last AS (
        SELECT request_id, key, max(seq) AS seq FROM events
        WHERE kind = 'outcome' AND run NOT IN sweeps GROUP BY request_id, key
    ), ident AS (
        SELECT key, min(seq) AS seq FROM events WHERE kind = 'planned' GROUP BY key
    )
    SELECT e.request_id, e.key, e.seq, e.outcome, e.profile_id,
           p.db_id, p.matching, p.resource_id, p.field_name
    FROM last JOIN events e ON e.seq = last.seq
    JOIN ident ON ident.key = e.key JOIN events p ON p.seq = ident.seq
    WHERE e.outcome IN ('erased', 'not_found')
    ORDER BY e.seq
"""
FINISHED_SCHEMA = {
    "request_id": pl.String,
    "key": pl.String,
    "seq": pl.Int64,
    "outcome": pl.String,
    "profile_id": pl.String,
    "db_id": pl.Int64,
    "matching": pl.String,
    "resource_id": pl.Int64,
    "field_name": pl.String,
}


@dataclass(frozen=True, slots=True)
class Spec:
    """One identifier column of the file and how its cells are keyed."""

    matching: Matching
    column: str  # the file's own header
    field_name: str | None = None  # custom matching only


@dataclass(frozen=True, slots=True)
class Identity:
    """A (db_id, matching, resource_id, field) combination finished requests used."""

    db_id: int
    matching: str
    resource_id: int | None
    field_name: str | None


def finished_identities(db: sqlite3.Connection) -> pl.DataFrame:
    """Pairs whose last outcome is erased or not_found, with their keys' identities.

    One row per (request id, key): ``seq`` is the outcome's event,
    ``profile_id`` the profile the service named (erased only).
    """
    rows = db.execute(_FINISHED_SQL).fetchall()
    return pl.DataFrame(rows, schema=FINISHED_SCHEMA, orient="row")


def identities(finished: pl.DataFrame) -> list[Identity]:
    """The distinct identity combinations of the finished pairs."""
    combos = finished.select("db_id", "matching", "resource_id", "field_name").unique(
        maintain_order=True
    )
    return [Identity(*row) for row in combos.iter_rows()]


def open_file(path: Path, columns: Columns, *, partial: bool = False) -> tuple[Table, list[Spec]]:
    """The file, opened lazily, and where its identifier columns are.

    With ``partial``, mapped columns the file lacks are left out (an import
    file need not carry every column a request file does), as long as one
    is there. Raises FileMissing (66) or InputUnusable (65), as the intake does.
    """
    wanted = {c.casefold() for c in _names(columns)} or {"email", "phone", "profile_id"}
    table = read_table(path, wanted)
    return table, specs_of(columns, table.names, table.file, partial=partial)


def _names(columns: Columns) -> list[str]:
    names = [n for n in (columns.email, columns.phone, columns.profile_id) if n]
    return names + [c.column for c in columns.custom]


def specs_of(columns: Columns, names: list[str], file: str, *, partial: bool = False) -> list[Spec]:
    """The identifier columns: as mapped, or the contract's default names (any case)."""
    specs: list[Spec] = []
    if columns.explicit:
        fixed: tuple[tuple[Matching, str | None], ...] = (
            ("email", columns.email),
            ("phone", columns.phone),
            ("profile_id", columns.profile_id),
        )
        mapped: list[tuple[Matching, str, str | None]] = [
            (matching, name, None) for matching, name in fixed if name
        ]
        mapped += [("custom", c.column, c.field_name) for c in columns.custom]
        first: InputUnusable | None = None
        for matching, name, field_name in mapped:
            try:
                column = find_column(names, name, f"columns.{matching}", file)
            except InputUnusable as exc:
                if not partial:
                    raise
                first = first or exc
                continue
            specs.append(Spec(matching, column, field_name))
        if not specs and first is not None:
            raise first
        return specs
    defaults: tuple[Matching, ...] = ("email", "phone", "profile_id")
    for default in defaults:
        found = [n for n in names if n.strip().casefold() == default]
        if found:
            specs.append(Spec(default, found[0]))
    if not specs:
        raise InputUnusable(
            f"{file} has no identifier column: none is named email, phone or profile_id"
            " (any case); map yours in [input.columns]"
        )
    return specs


def normalised(raw: pl.Series, spec: Spec, file: str, phone_region: str) -> pl.DataFrame:
    """``value`` (normalised, or null) and ``reason`` (why a non-empty cell is unusable)."""
    text, _ = as_text(raw, file)
    if spec.matching == "email":
        return normalize.emails(text)
    if spec.matching == "phone":
        return normalize.phones(text, phone_region)
    return normalize.texts(text)


def matches(
    values: pl.Series,
    spec: Spec,
    combos: Iterable[Identity],
    keyer: Keyer,
    wanted: Sequence[str] | set[str],
) -> pl.DataFrame:
    """For each distinct value that keys to one of ``wanted``: ``value`` and its ``key``.

    Each distinct value is keyed under every combination of ``spec``'s
    matching mode (and field, for custom); the first wanted key wins.
    """
    distinct = values.drop_nulls().unique(maintain_order=True)
    found: list[pl.DataFrame] = []
    target = pl.Series(list(wanted), dtype=pl.String).implode()
    for combo in combos:
        if combo.matching != spec.matching:
            continue
        if spec.matching == "custom" and combo.field_name != spec.field_name:
            continue
        prefix = message_prefix(combo.db_id, combo.matching, combo.resource_id, combo.field_name)
        keys = pl.Series("key", keyer.keys(prefix, distinct.to_list()), dtype=pl.String)
        frame = pl.DataFrame({"value": distinct, "key": keys})
        found.append(frame.filter(pl.col("key").is_in(target)))
    if not found:
        return pl.DataFrame(schema={"value": pl.String, "key": pl.String})
    return pl.concat(found).unique(subset="value", keep="first", maintain_order=True)
