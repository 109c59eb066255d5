"""The XLSX report: sheets "Summary", "Identifiers", "Requests", "Reappeared" and "Runs".

A sheet past :data:`SHEET_ROWS` rows goes on in "Identifiers (2)", ...,
each with its header. Rows stream to disk (xlsxwriter's constant memory);
text is neutralised (:mod:`erasure.safecells`), moments are Excel date-times
in UTC, and an empty deadline says :data:`NO_DEADLINE`. The rows themselves
are :mod:`erasure.report`'s, the same as every other format's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from erasure.job import Job
from erasure.ledger import Outcome
from erasure.report.words import setting_rows
from erasure.safecells import neutralise

NO_DEADLINE = "no deadline"  # where a request has no received-at (not an error)
SHEET_ROWS = 1_048_576  # rows per worksheet, the header included (Excel's limit)
_ANY = ("write_string", "write")
_OUTCOMES = frozenset(o.value for o in Outcome)


def write(
    path: Path,
    *,
    job: Job,
    now: datetime,
    counts: dict[str, Any],
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    reappeared: pl.DataFrame,
    runs: list[dict[str, Any]],
) -> None:
    """The workbook at ``path``: Summary (``counts``, the job's settings), Identifiers
    (``rows``), Requests, Reappeared and Runs."""
    options = {
        "constant_memory": True,  # rows stream to disk: a million rows in little memory
        "strings_to_formulas": False,  # text is text, whatever it begins with
        "strings_to_numbers": False,
        "strings_to_urls": False,
        "default_date_format": "yyyy-mm-dd",
        # Excel has no time zones: every moment is written in UTC, as the headers say
        "remove_timezone": True,
    }
    book = xlsxwriter.Workbook(str(path), options)
    header = book.add_format({"bold": True, "bg_color": "#E8EEF4", "bottom": 1})
    moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    try:
        summary = _summary(counts, job, now)
        _sheets(book, "Summary", header, ["item", "value"], summary, [36, 90], _ANY)
        _frame_sheets(book, "Identifiers", header, _moments(rows), moment)
        _frame_sheets(book, "Requests", header, _moments(requests), moment)
        _frame_sheets(book, "Reappeared", header, _moments(reappeared), moment)
        _frame_sheets(book, "Runs", header, _moments(_runs_frame(runs)), moment)
    finally:
        book.close()


def _moments(frame: pl.DataFrame) -> pl.DataFrame:
    """Text timestamps (``*_at``, ISO 8601 in UTC) as datetimes, so that Excel sorts them."""
    texts = [c for c, t in frame.schema.items() if c.endswith("_at") and t == pl.String]
    return frame.with_columns(pl.col(texts).str.to_datetime(time_zone="UTC", strict=False))


def _frame_sheets(
    book: xlsxwriter.Workbook, name: str, header: Any, frame: pl.DataFrame, moment: Any
) -> None:
    """``frame`` under a header; dates as dates, moments as date and time (``moment``)."""
    widths = [_width(c, frame[c]) for c in frame.columns]
    kinds = [_kind(t) for t in frame.dtypes]
    formats = [moment if t == pl.Datetime else None for t in frame.dtypes]
    widths = [max(w, 20) if f is not None else w for w, f in zip(widths, formats, strict=True)]
    _sheets(book, name, header, frame.columns, frame.iter_rows(), widths, kinds, formats)


def _kind(dtype: pl.DataType) -> str:
    """The xlsxwriter method for a column: typed calls skip write()'s guessing."""
    if dtype == pl.String:
        return "write_string"
    if dtype == pl.Boolean:
        return "write_boolean"
    if dtype.is_numeric():
        return "write_number"
    if dtype.is_temporal():
        return "write_datetime"  # the workbook's default date format
    return "write"


def _sheets(
    book: xlsxwriter.Workbook,
    name: str,
    header: Any,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    widths: Sequence[int],
    kinds: Sequence[str],
    formats: Sequence[Any] | None = None,
) -> None:
    """Write ``rows`` under a header row, continuing on "name (2)", ... when full.

    ``kinds`` names the worksheet method for each column, ``formats`` its cell
    format (None: the default, dates as yyyy-mm-dd); text is neutralised.
    """
    formats = formats or [None] * len(columns)
    blanks = [NO_DEADLINE if c == "deadline" else None for c in columns]
    per_sheet = SHEET_ROWS - 1
    sheet_no, r = 0, per_sheet  # r == per_sheet: open the first sheet
    for row in rows:
        if r == per_sheet:
            sheet_no += 1
            sheet = _new_sheet(book, name, sheet_no, header, columns, widths)
            writers = [getattr(sheet, kind) for kind in kinds]
            r = 0
        r += 1
        for c, value in enumerate(row):
            if value is None:
                if blanks[c] is not None:  # an empty received-at: said, not left to guess
                    sheet.write_string(r, c, blanks[c])
                continue
            cell = neutralise(value) if isinstance(value, str) else value
            if formats[c] is None:
                writers[c](r, c, cell)
            else:
                writers[c](r, c, cell, formats[c])
    if sheet_no == 0:  # no rows: the header alone still says what would be there
        _new_sheet(book, name, 1, header, columns, widths)


def _new_sheet(
    book: xlsxwriter.Workbook,
    name: str,
    number: int,
    header: Any,
    columns: Sequence[str],
    widths: Sequence[int],
) -> Any:
    sheet = book.add_worksheet(name if number == 1 else f"{name} ({number})")
    sheet.write_row(0, 0, columns, header)
    sheet.freeze_panes(1, 0)
    for c, width in enumerate(widths):
        sheet.set_column(c, c, width)
    return sheet


def _width(name: str, column: pl.Series) -> int:
    """A column width (characters) from the header and the first values."""
    sample = column.head(200).cast(pl.String).str.len_chars().max()
    longest = int(sample) if isinstance(sample, int) else 0
    return max(8, min(60, max(len(name), longest) + 2))


def _summary(counts: dict[str, Any], job: Job, now: datetime) -> list[tuple[str, Any]]:
    head = counts.get("chain_head") or {}
    items: list[tuple[str, Any]] = [
        ("generated_at", now.isoformat(timespec="seconds")),
        ("job", str(job.path)),
        ("ledger", str(job.ledger.path)),
        ("total", counts["total"]),
    ]
    items += [(o.value, counts[o.value]) for o in Outcome]
    items += [
        ("in_doubt", counts["in_doubt"]),
        ("overdue", counts["overdue"]),
        ("requests", counts["requests"]),
    ]
    acc = counts.get("accounting") or {}
    items += [
        ("requests complete", acc.get("complete")),
        ("requests incomplete", acc.get("incomplete")),
        *(
            (f"incomplete: {reason}", n)
            for reason, n in (acc.get("incomplete_reasons") or {}).items()
        ),
        ("invalid records unresolved", counts.get("invalid")),
        ("runs", counts["runs"]),
        ("chain_head_seq", head.get("seq")),
        ("chain_head_link", head.get("link")),
        ("check the chain with", f"erasure verify {job.path}"),
    ]
    came_back = counts.get("reappeared") or {}
    items += [(f"reappeared: {name.replace('_', ' ')}", n) for name, n in came_back.items()]
    items += [(f"setting: {label}", said) for label, said in setting_rows(job.settings())]
    return items


_RUN_SCHEMA = {
    "run": pl.Int64,
    "started_at": pl.String,
    "finished_at": pl.String,
    "exit_code": pl.Int64,
    "input_sha256": pl.String,
    "input_rows": pl.Int64,
    **{o.value: pl.Int64 for o in Outcome if o is not Outcome.PENDING},
    "stop_reason": pl.String,
    "error": pl.String,
}


def _runs_frame(runs: list[dict[str, Any]]) -> pl.DataFrame:
    """The run history, one row per run, outcomes spread into columns."""
    records = []
    for run in runs:
        outcomes = run.get("outcomes") or {}
        records.append(
            {
                name: outcomes.get(name) if name in _OUTCOMES else run.get(name)
                for name in _RUN_SCHEMA
            }
        )
    return pl.DataFrame(records, schema=_RUN_SCHEMA, orient="row")
