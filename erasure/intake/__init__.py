"""Intake: a request file in, a clean, deduplicated, keyed list of identifiers out.

::

    file ─► reader (by suffix) ─► columns mapped ─► cells as text ─► normalised
         ─► row checks (db_id, resource_id, received_at) ─► invalid records
         ─► one item per (request id, key), first seen first ─► keys

Modules, one concept each: :mod:`.readers` (opening and sniffing a file:
the public reader API, ``read_table``, ``Table``, which screening and the
sweep use too), :mod:`.layout` (the job's columns in the file's headers,
``find_column``), :mod:`.cells` (cells as text, ``as_text``; row values),
:mod:`.assemble` (invalid records, dedupe, keys), :mod:`.normalize` (the
rules for each kind of identifier), :mod:`.shapes` (the results' schemas).

Readers: CSV/TSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, or Windows-1251;
delimiter sniffed among ``,`` ``;`` tab ``|``; every cell text), Parquet,
XLSX (the first sheet), NDJSON/JSONL. A file that cannot be used raises
:class:`~erasure.errors.InputUnusable` (65) with one line saying why; a
missing one :class:`~erasure.errors.FileMissing` (66). A bad cell never
stops the file: it becomes an invalid record (:data:`INVALID_SCHEMA`). Messages name files,
columns and rows, never a cell's value.
"""

from __future__ import annotations

from pathlib import Path

from erasure.errors import ConfigError
from erasure.job import Job
from erasure.keys import Keyer

from . import normalize, opendsr
from .assemble import build
from .cells import as_text
from .layout import find_column, header_rule, map_columns, wanted_columns
from .readers import FORMATS, Table, read_table
from .received import conflicts_logged
from .shapes import (
    INVALID_SCHEMA,
    ITEMS_SCHEMA,
    REJECT_VALUE_MAX,
    REJECTS_COLUMNS,
    USABLE_SCHEMA,
    Counts,
    Intake,
    Reason,
)

__all__ = [
    "FORMATS",
    "INVALID_SCHEMA",
    "ITEMS_SCHEMA",
    "REJECTS_COLUMNS",
    "REJECT_VALUE_MAX",
    "USABLE_SCHEMA",
    "Counts",
    "Intake",
    "Reason",
    "Table",
    "as_text",
    "find_column",
    "normalize",
    "read",
    "read_table",
]


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
    if opendsr.is_opendsr(source):
        return opendsr.read(job, keyer, source)
    table = read_table(source, wanted_columns(job.input), header_rule(job.input))
    layout = map_columns(job.input, table.names, source.name)
    items, invalid, counts, usable, dates, repairs = build(table, layout, job.input, keyer)
    return Intake(
        path=source,
        sha256=table.sha256,
        items=items,
        invalid=invalid,
        counts=counts,
        usable=usable,
        header_row=table.header_row,
        received=conflicts_logged(dates),
        repairs=repairs,
    )
