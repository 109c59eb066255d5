"""The compliance report: one row per (request id, identifier), from the ledger.

The format follows the output file's suffix (:data:`FORMATS`). Every format
holds the contract's columns in order (:data:`~erasure.status.REPORT_COLUMNS`),
then ``deadline`` and ``overdue`` when any request has a ``received_at``.

- ``.csv``: UTF-8, comma-separated, a header row; ``in_doubt`` and
  ``overdue`` as ``true``/``false``; spreadsheet-safe (below).
- ``.parquet``: the same columns, typed (timestamps as UTC datetimes, the
  deadline as a date); not neutralised: it is data for programs, the exact
  values of the ledger.
- ``.xlsx``: sheets "Summary", "Identifiers" (continued on "Identifiers (2)",
  ... past :data:`~erasure.report.xlsx.SHEET_ROWS` rows), "Requests" (the roll-up),
  "Reappeared" and "Runs"; spreadsheet-safe (:mod:`erasure.report.xlsx`).
- ``.html``: one self-contained page for people (:mod:`erasure.report.html`).

Spreadsheet-safe: a text cell that begins with ``=``, ``+``, ``-`` or ``@``
is written with a leading apostrophe, so that opening the file never runs a
formula (:mod:`erasure.safecells`, which also covers a leading tab, carriage
return, line feed and the full-width forms of the four signs).

A request is erased when every identifier of it has a final ``erased`` or
``not_found`` (:func:`requests`). Rows without a request id roll up into one
row whose ``request_id`` is empty.

The file is written beside its destination and renamed into place, so a
reader never sees half a report and a failed write leaves no debris.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import xlsxwriter
import xlsxwriter.exceptions

from erasure import pair_rows
from erasure import status as status_mod
from erasure.after.suppressions import with_suppressed
from erasure.decision_words import with_decision
from erasure.errors import OutputError, UnknownRequest, UsageError
from erasure.files import atomic_write
from erasure.job import Job
from erasure.ledger import Outcome
from erasure.ledger import read as ledger_read
from erasure.outputs import check_output
from erasure.report import xlsx
from erasure.safecells import neutralise_frame

DEADLINE_COLUMNS = ("deadline", "overdue")
# every report's columns, in the contract's order
COLUMNS = (
    *pair_rows.REPORT_COLUMNS,
    *pair_rows.INVALID_COLUMNS,
    *DEADLINE_COLUMNS,
    pair_rows.REAPPEARED_COLUMN,
    *pair_rows.REQUEST_COLUMNS,
)
_DONE = (Outcome.ERASED.value, Outcome.NOT_FOUND.value)
_TIMESTAMPS = ("first_attempt_at", "finished_at")


def table(
    db: sqlite3.Connection,
    *,
    now: datetime | None = None,
    run: int | None = None,
    request_id: str | None = None,
) -> pl.DataFrame:
    """The report's rows: the contract's columns, then row, column, reason, deadline, overdue,
    reappeared, request_status, request_reason, original_deadline, suppressed, decision.

    All pairs, or only those planned by ``run``, or those of ``request_id``.

    Every report has the same columns in the same order (empty where they do
    not apply); the unresolved invalid records are rows with outcome
    ``invalid``, grouped with their request's identifiers.
    """
    if run is not None or request_id is not None:
        return _table_of(db, now=now, run=run, request_id=request_id)
    rows, states, _ = status_mod.account(db, now=now)
    rows = pair_rows.with_request_state(with_suppressed(db, rows), states)
    # a person's decision: held or cancelled, and why
    return with_decision(db, rows).select(*COLUMNS)


def _table_of(
    db: sqlite3.Connection, *, now: datetime | None, run: int | None, request_id: str | None
) -> pl.DataFrame:
    """:func:`table` of one run or one request, reading only its rows (by index).

    A run's report holds the pairs it planned (no invalid record: those have
    no key to plan); a request's, its pairs and unresolved invalid records.
    """
    pairs = pair_rows.pairs(db, now=now, run=run, request_id=request_id)
    if run is not None and request_id is not None:
        pairs = pairs.filter(pl.col("request_id") == request_id)
    invalid = pair_rows.dated(
        db, ledger_read.invalid_records(db, request_id=request_id, unresolved=True), now
    )
    if run is not None:
        invalid = invalid.clear()
    totals = ledger_read.totals(db)
    came_back = pair_rows.reappeared_records(db) if totals.get("reappeared", 0) else None
    rows = pair_rows.report_rows(pairs, invalid, came_back)
    if run is not None:  # requests in the order they first appear in the whole ledger
        first = ledger_read.request_order(db, rows["request_id"].unique().to_list())
        rows = rows.join(first, on="request_id", how="left", nulls_equal=True).sort(
            "first_planned", maintain_order=True
        )
    # each request's state over all of it, from the kept summaries (one run's report
    # holds only some of a request's pairs)
    states = ledger_read.request_reasons(db, rows["request_id"].unique().to_list())
    rows = pair_rows.with_request_state(with_suppressed(db, rows), states)
    return with_decision(db, rows).select(*COLUMNS)


def requests(rows: pl.DataFrame, *, now: datetime | None = None) -> pl.DataFrame:
    """One row per request id, in first-seen order (:func:`erasure.status.request_states`).

    ``identifiers``, a count per outcome, ``invalid`` (unresolved records) and
    ``in_doubt``; ``status`` complete | incomplete and ``why``; the
    request's earliest ``deadline``, ``open_past_deadline``,
    ``finished_late`` and ``finished_at``.
    """
    states = status_mod.request_states(rows, now=now)
    return states.select(
        "request_id",
        pl.when(pl.col("why") == "complete")
        .then(pl.lit("complete"))
        .otherwise(pl.lit("incomplete"))
        .alias("status"),
        "why",
        "identifiers",
        *(o.value for o in Outcome),
        "invalid",
        "in_doubt",
        "deadline",
        "open_past_deadline",
        "finished_late",
        "finished_at",
    )


@dataclass(frozen=True, slots=True)
class _Context:
    """What every format's writer may need besides the rows."""

    db: sqlite3.Connection
    job: Job
    now: datetime  # the report's moment (UTC)
    out: Path  # the destination the user named (the writer writes a temporary beside it)
    html_rows_max: int  # rows the HTML page shows before every row goes to OUT.rows.csv


def write(
    db: sqlite3.Connection,
    job: Job,
    out: Path,
    *,
    now: datetime | None = None,
    run: int | None = None,
    request_id: str | None = None,
    html_rows_max: int | None = None,
) -> None:
    """Write the report for ``job``'s ledger to ``out``; the suffix picks the format.

    ``html_rows_max``: rows the HTML page lists before it writes every row to
    ``OUT.rows.csv`` (:func:`spill_path`; default :data:`erasure.report.html.ALL_ROWS_MAX`,
    the contract's 100,000).

    Raises :class:`UsageError` (64) for an unsupported suffix, an output
    that is one of the job's own files or whose folder is missing;
    :class:`OutputError` (74) when ``out`` cannot be written (not writable,
    or the disk full).
    """
    from erasure.report import html as report_html

    writer = FORMATS.get(out.suffix.lower())
    if writer is None:
        raise UsageError(
            f"cannot write a report as {out.name!r}: the suffix picks the format, one of "
            + ", ".join(FORMATS)
        )
    check_output(out, job)  # never the input, the job or the ledger; its folder exists (64)
    if out.suffix.lower() == ".html":
        check_output(spill_path(out), job, flag="--out (its every-row file)")
    now = now or datetime.now(UTC)
    rows = table(db, now=now, run=run, request_id=request_id)
    if request_id is not None and not rows.height:
        raise UnknownRequest(request_id)
    limit = report_html.ALL_ROWS_MAX if html_rows_max is None else html_rows_max
    context = _Context(db=db, job=job, now=now, out=out, html_rows_max=limit)
    try:
        # created 0600 (or 0640 for [ledger] group) before a byte is written
        with atomic_write(out, job.perms) as tmp:
            writer(tmp, rows, context)
    except OSError as exc:
        raise OutputError(f"cannot write the report {out}: {exc.strerror or exc}") from None
    except (xlsxwriter.exceptions.XlsxWriterException, pl.exceptions.PolarsError) as exc:
        # the writer libraries wrap a full disk in their own types (xlsxwriter's
        # FileCreateError, polars' ComputeError): the rows were computed before,
        # so what fails here is the writing
        raise OutputError(f"cannot write the report {out}: {_cause(exc)}") from None


# ---------------------------------------------------------------- formats


def _cause(exc: BaseException) -> str:
    """The OS error under a writer library's exception, in words (never a cell's value)."""
    inner = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args else None)
    if isinstance(inner, OSError):
        return inner.strerror or type(inner).__name__
    return f"{type(exc).__name__} (the disk full, or the file not writable)"


def spill_path(out: Path) -> Path:
    """The HTML report's every-row file ``OUT.rows.csv`` (``r.html`` -> ``r.rows.csv``)."""
    return out.with_suffix(".rows.csv")


def _write_csv(path: Path, rows: pl.DataFrame, context: _Context) -> None:
    neutralise_frame(rows).write_csv(path)


def _write_parquet(path: Path, rows: pl.DataFrame, context: _Context) -> None:
    typed = rows.with_columns(pl.col(_TIMESTAMPS).str.to_datetime(time_zone="UTC", strict=False))
    typed.write_parquet(path)


def _write_html(path: Path, rows: pl.DataFrame, context: _Context) -> None:
    from erasure.report import html as report_html

    db, job, now = context.db, context.job, context.now
    spill = None
    if rows.height > context.html_rows_max:
        # every row, beside the page, created owner-only like the page itself
        spill = spill_path(context.out)
        with atomic_write(spill, job.perms) as tmp:
            neutralise_frame(rows).write_csv(tmp)
    page = report_html.render(
        spill=spill,
        rows_max=context.html_rows_max,
        rows=rows,
        requests=requests(rows, now=now),
        counts=status_mod.status(db, now=now).as_json(),
        runs=status_mod.runs(db),
        settings=job.settings(),
        reappeared=pair_rows.reappeared_profiles(pair_rows.reappeared_records(db)),
        ledger_path=job.ledger.path,
        job_path=job.path,
        generated_at=now,
    )
    path.write_text(page, encoding="utf-8")


def _write_xlsx(path: Path, rows: pl.DataFrame, context: _Context) -> None:
    db, now = context.db, context.now
    xlsx.write(
        path,
        job=context.job,
        now=now,
        counts=status_mod.status(db, now=now).as_json(),
        rows=rows,
        requests=requests(rows, now=now),
        reappeared=pair_rows.reappeared_profiles(pair_rows.reappeared_records(db)),
        runs=status_mod.runs(db),
    )


_Writer = Callable[[Path, pl.DataFrame, _Context], None]
FORMATS: dict[str, _Writer] = {
    ".csv": _write_csv,
    ".parquet": _write_parquet,
    ".xlsx": _write_xlsx,
    ".html": _write_html,
}
