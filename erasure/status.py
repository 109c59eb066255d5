"""Read-only views of the ledger: per-request state, status counts, lookup.

Safe while a run writes (the ledger is opened read-only; SQLite's WAL gives
a consistent snapshot). Nothing here needs the API token; ``lookup`` needs
the ledger key to compute the key of the identifier asked about. The rows
these counts come from (one per pair, invalid records, reappeared
profiles) are :mod:`erasure.pair_rows`'; their names are re-exported here
for the callers that read them with the counts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl

from erasure import deadline_table, partition
from erasure import ledger as ledger_mod
from erasure.accounting import LedgerAccount, ledger_account, ledger_account_from_summaries
from erasure.ledger import Outcome, sweeps
from erasure.ledger import read as ledger_read
from erasure.ledger.lockprobe import running as running  # re-exported: app.status reads it here
from erasure.pair_rows import (
    INVALID_COLUMNS as INVALID_COLUMNS,
)
from erasure.pair_rows import NO_REAPPEARED
from erasure.pair_rows import (
    REAPPEARED_COLUMN as REAPPEARED_COLUMN,
)
from erasure.pair_rows import (  # the rows status counts from, re-exported
    REPORT_COLUMNS as REPORT_COLUMNS,
)
from erasure.pair_rows import (
    REQUEST_COLUMNS as REQUEST_COLUMNS,
)
from erasure.pair_rows import (
    CameBack as CameBack,
)
from erasure.pair_rows import (
    dated as dated,
)
from erasure.pair_rows import (
    invalid_records as invalid_records,
)
from erasure.pair_rows import (
    pairs as pairs,
)
from erasure.pair_rows import (
    reappeared_counts as reappeared_counts,
)
from erasure.pair_rows import (
    reappeared_profiles as reappeared_profiles,
)
from erasure.pair_rows import (
    reappeared_records as reappeared_records,
)
from erasure.pair_rows import (
    report_rows as report_rows,
)
from erasure.pair_rows import (
    with_request_state as with_request_state,
)
from erasure.status_result import ChainHead, LedgerStatus, OpenElsewhere, RunNow, SafeToDelete


def request_states(
    rows: pl.DataFrame, *, now: datetime | None = None, running: bool = False
) -> pl.DataFrame:
    """One row per request (the rows without a request id share one), first-seen order.

    ``rows`` is :func:`report_rows`' table. Columns: request_id,
    identifiers, a count per outcome, ``invalid`` (unresolved records),
    ``why`` (``complete`` or the request's :class:`erasure.partition.Reason`),
    ``deadline``, ``open_past_deadline``, ``finished_late``,
    ``finished_at``.
    """
    now = now or datetime.now(UTC)
    outcome = pl.col("outcome")
    pair = outcome.ne("invalid")
    final = outcome.is_in([o.value for o in ledger_mod.FINAL])
    done = outcome.is_in([Outcome.ERASED.value, Outcome.NOT_FOUND.value])
    # a count per outcome, and those the partition reads that are no outcome yet (held and
    # cancelled, until erasure hold and cancel record them)
    named = [o.value for o in Outcome]
    named += [c for c in ("held", "cancelled") if c not in named]
    # an unusable received date is an invalid record, never the partition's invalid
    date = outcome.eq("invalid") & pl.col("reason").eq(partition.DATE_REASON).fill_null(False)
    out = rows.group_by("request_id", maintain_order=True).agg(
        pair.sum().cast(pl.Int64).alias("identifiers"),
        *(outcome.eq(name).sum().cast(pl.Int64).alias(name) for name in named),
        outcome.eq("invalid").sum().cast(pl.Int64).alias("invalid"),
        (outcome.eq("invalid") & ~date).sum().cast(pl.Int64).alias("_invalid"),
        (date.any() & pl.col("deadline").is_null().all()).alias("deadline_unknown"),
        pl.col("in_doubt").fill_null(False).sum().cast(pl.Int64).alias("in_doubt"),
        # a request with no identifier is never finished (it has nothing to finish)
        ((final | ~pair).all() & pair.any()).alias("all_final"),
        (done | ~pair).all().alias("all_done"),
        pl.col("deadline").min().alias("deadline"),
        pl.col("finished_at").filter(pair).max().alias("finished_at"),
    )
    # the one rule (erasure.partition), over the counts it reads under its own names
    why = partition.polars().alias("why")
    out = out.with_columns(
        out.select(
            pl.col("identifiers").alias("pairs"),
            *(c for c in partition.COUNTS if c not in ("pairs", "invalid_unresolved")),
            pl.col("_invalid").alias("invalid_unresolved"),
        )
        .select(why)
        .to_series()
    )
    finished_moment = pl.col("finished_at").str.to_datetime(time_zone="UTC", strict=False)
    due = deadline_table.instant(pl.col("deadline"))  # the end of the due day, an instant
    has_deadline = pl.col("deadline").is_not_null()
    return out.with_columns(
        (
            has_deadline
            & (pl.col("why") != "complete")
            & ~pl.col("all_final")
            & (pl.lit(now.astimezone(UTC)) > due)
        ).alias("open_past_deadline"),
        (has_deadline & pl.col("all_final") & (pl.col("identifiers") > 0) & (finished_moment > due))
        .fill_null(False)
        .alias("finished_late"),
    ).drop(
        "all_final",
        "all_done",
        "_invalid",
        *(c for c in named if c not in (o.value for o in Outcome)),
    )


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction around several queries, so that they see the same ledger.

    Outside a transaction each SELECT sees the ledger as it is at that
    moment; while a run commits between two of them, a view could count the
    requests in flight from the later read and the pairs from the earlier one
    (none yet). A nested use joins the outer transaction.
    """
    if db.in_transaction:
        yield db
        return
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.rollback()  # read-only: nothing to keep


def account(
    db: sqlite3.Connection, *, now: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, LedgerAccount]:
    """The report's rows, the requests' states and the ledger's accounting, from one read."""
    with snapshot(db):
        return _account(db, now=now)


def _account(
    db: sqlite3.Connection, *, now: datetime | None
) -> tuple[pl.DataFrame, pl.DataFrame, LedgerAccount]:
    table = pairs(db, now=now)
    invalid = invalid_records(db)
    rows = report_rows(table, invalid, reappeared_records(db))
    states = request_states(rows, now=now)
    resolved = int(invalid["resolved"].sum()) if invalid.height else 0
    return rows, states, ledger_account(table, states, invalid.height - resolved, resolved)


def runs(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, oldest first, as the reports show it: start, end, exit code, input, counts."""
    return [r.as_json() for r in ledger_read.runs(db)]


def status(
    db: sqlite3.Connection, *, now: datetime | None = None, is_running: bool = False
) -> LedgerStatus:
    """Counts by outcome, pending, in doubt, invalid, overdue, the accounting and the last run.

    ``is_running``: a run holds the ledger now (:func:`running`); its
    unanswered requests are then "in flight", not in doubt. Every figure
    comes from one :func:`snapshot` of the derived state, from its summaries
    and partial indexes: the cost does not grow with the history, and
    archived requests count as before.
    """
    now = now or datetime.now(UTC)
    with snapshot(db):
        history = ledger_read.runs(db)
        last = history[-1] if history else None
        flying: set[str] = set()
        run_now = None
        if is_running and last is not None and last.finished_at is None:
            flying = ledger_read.in_flight(db, last.run)
            run_now = RunNow(run=last.run, since=last.started_at, in_flight=len(flying))
        # a pair in doubt whose key is in flight is waiting for its answer, not in doubt
        in_doubt = sum(1 for key in ledger_read.in_doubt_keys(db) if key not in flying)
        rule, extended = deadline_table.rule_of(db), deadline_table.extensions_of(db)
        open_past, late = deadline_table.deadline_flags(db, rule, extended, now=now)
        totals = ledger_read.totals(db)
        acc = ledger_account_from_summaries(
            totals, in_doubt=in_doubt, open_past_deadline=open_past, finished_late=late
        )
        head = ledger_read.head(db)
        missing, done = _inputs(db)
        return LedgerStatus(
            total=acc.pairs,
            # a field per outcome (tests/test_status_schema.py holds them equal)
            **{o.value: int(totals.get(o.value, 0)) for o in Outcome},
            in_doubt=in_doubt,
            invalid=acc.unresolved,
            overdue=deadline_table.overdue_count(db, rule, extended, now=now),
            requests=acc.requests,
            incomplete_reasons=dict(acc.incomplete_reasons),
            deadline_unknown=acc.deadline_unknown,
            sweep_deletes=sweeps.counts(db),  # a sweep's deletes, apart from the pairs
            accounting=acc,
            open_elsewhere=missing,
            safe_to_delete=done,
            verdict=acc.verdict + _elsewhere_words(missing),
            running=run_now,
            last_run=last,
            last_run_pending=ledger_read.last_run_pending(db, last.run) if last else None,
            runs=len(history),
            chain_head=ChainHead(seq=head[0], link=head[1]) if head else None,
            # the reappeared events are read only when the kept total says there are any
            reappeared=reappeared_counts(
                reappeared_profiles(
                    reappeared_records(db) if totals.get("reappeared", 0) else NO_REAPPEARED
                )
            ),
        )


def _elsewhere_words(missing: tuple[OpenElsewhere, ...]) -> str:
    """The verdict's words for open pairs whose input file is gone or changed (none: "")."""
    if not missing:
        return ""
    n = sum(m.open for m in missing)
    files = ", ".join(m.file for m in missing)
    return f" {n} pairs of earlier input files are still open and their files gone: {files}."


def _inputs(db: sqlite3.Connection) -> tuple[tuple[OpenElsewhere, ...], tuple[SafeToDelete, ...]]:
    """Earlier input files: open pairs whose file is gone or changed, and files safe to delete."""
    from erasure.carry import open_elsewhere

    missing, done = open_elsewhere(db)
    return (
        tuple(
            OpenElsewhere(m.file.name, m.file.path, m.file.sha256, m.file.open, m.state.value)
            for m in missing
        ),
        tuple(SafeToDelete(f.name, f.path, f.sha256) for f in done),
    )


def lookup(db: sqlite3.Connection, keys: list[str]) -> pl.DataFrame:
    """The state of every pair whose key is one of ``keys`` (one indexed read)."""
    return pairs(db, keys=keys)


def erased_or_gone(rows: pl.DataFrame) -> bool:
    """True when every request's last outcome for the identifier is erased or not_found."""
    return (
        rows.height > 0
        and rows["outcome"].is_in([Outcome.ERASED.value, Outcome.NOT_FOUND.value]).all()
    )
