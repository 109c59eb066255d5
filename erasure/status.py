"""Read-only views of the ledger: per-pair state, status counts, lookup.

Safe while a run writes (the ledger is opened read-only; SQLite's WAL gives
a consistent snapshot). Nothing here needs the API token; ``lookup`` needs
the ledger key to compute the key of the identifier asked about.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import polars as pl

from erasure import ledger as ledger_mod
from erasure.ledger import Outcome
from erasure.ledger import read as ledger_read

# Three plain scans, one per kind; the grouping is polars' (in parallel, in
# memory). The same grouping in SQL (GROUP BY over text keys, a join on key)
# took 13 s on a ledger of a million events, this takes about 2.
_PLANNED_SQL = """
    SELECT seq, run, request_id, key, db_id, matching, resource_id, field_name, received_at
    FROM events WHERE kind = 'planned' ORDER BY seq
"""
_PLANNED_SCHEMA = {
    "seq": pl.Int64,
    "run": pl.Int64,
    "request_id": pl.String,
    "key": pl.String,
    "db_id": pl.Int64,
    "matching": pl.String,
    "resource_id": pl.Int64,
    "field_name": pl.String,
    "received_at": pl.String,
}
_OUTCOME_SQL = """
    SELECT request_id, key, outcome, in_doubt, profile_id, error_code, error_text,
           http_status, at AS finished_at
    FROM events WHERE kind = 'outcome' ORDER BY seq
"""
_OUTCOME_SCHEMA = {
    "request_id": pl.String,
    "key": pl.String,
    "outcome": pl.String,
    "in_doubt": pl.Int64,
    "profile_id": pl.String,
    "error_code": pl.Int64,
    "error_text": pl.String,
    "http_status": pl.Int64,
    "finished_at": pl.String,
}
_SENT_SQL = "SELECT key, run, at FROM events WHERE kind = 'sent' ORDER BY seq"
_SENT_SCHEMA = {"key": pl.String, "run": pl.Int64, "at": pl.String}

REPORT_COLUMNS = (
    "request_id",
    "key",
    "db_id",
    "matching",
    "outcome",
    "in_doubt",
    "profile_id",
    "error_code",
    "error_text",
    "http_status",
    "attempts",
    "first_attempt_at",
    "finished_at",
)


def pairs(
    db: sqlite3.Connection,
    *,
    now: datetime | None = None,
    run: int | None = None,
    request_id: str | None = None,
    keys: list[str] | None = None,
) -> pl.DataFrame:
    """One row per (request id, key) ever planned, with its current state.

    Columns: :data:`REPORT_COLUMNS`, then ``received_at``, ``deadline`` (a
    date) and ``overdue`` (bool) where a received_at is known, and
    ``deadline_days``. ``outcome`` is ``pending`` where no outcome was
    recorded; ``in_doubt`` is true when the outcome was recorded after a
    request that may have reached the service unanswered, or when such a
    request is still unresolved. A final not_found after an in-doubt send
    most likely means the earlier request erased the profile.

    ``run``, ``request_id`` or ``keys`` narrow the rows to the pairs planned
    by that run, of that request, or with one of those keys: on a ledger
    with derived state, an indexed read of only those.
    """
    if ledger_read.fast(db):
        rows = ledger_read.pairs(db, run=run, request_id=request_id, keys=keys)
        return _with_deadline(db, rows, now=now)
    table = _pairs(db, _planned(db), now=now)
    if run is not None:
        planned = _planned(db).filter(pl.col("run") == run).select("request_id", "key").unique()
        table = table.join(planned, on=["request_id", "key"], how="semi", nulls_equal=True)
    if request_id is not None:
        table = table.filter(pl.col("request_id") == request_id)
    if keys is not None:
        table = table.filter(pl.col("key").is_in(keys))
    return table


def _planned(db: sqlite3.Connection) -> pl.DataFrame:
    """Every 'planned' event, oldest first."""
    return ledger_mod.frame(db, _PLANNED_SQL, _PLANNED_SCHEMA)


def _pairs(db: sqlite3.Connection, events: pl.DataFrame, *, now: datetime | None) -> pl.DataFrame:
    now = now or datetime.now(UTC)
    pair = ["request_id", "key"]
    # a pair's identity is that of its first planning
    planned = events.group_by(pair, maintain_order=True).agg(
        pl.all().exclude("seq", "run").first(), pl.col("seq").min().alias("first_planned")
    )
    outcomes = ledger_mod.frame(db, _OUTCOME_SQL, _OUTCOME_SCHEMA).unique(
        subset=pair, keep="last", maintain_order=True
    )
    # A pair's attempts are the requests sent for its key in the runs that
    # planned the pair: a person who asks again does not inherit the first
    # request's.
    sent = (
        events.select(*pair, "run")
        .unique()
        .join(ledger_mod.frame(db, _SENT_SQL, _SENT_SCHEMA), on=["key", "run"])
        .group_by(pair)
        .agg(
            pl.len().cast(pl.Int64).alias("attempts"), pl.col("at").min().alias("first_attempt_at")
        )
    )
    doubtful = pl.Series("key", sorted(ledger_mod.doubtful_keys(db)), dtype=pl.String)
    out = (
        planned.sort("first_planned")
        .join(
            outcomes, on=["request_id", "key"], how="left", nulls_equal=True, maintain_order="left"
        )
        .join(sent, on=["request_id", "key"], how="left", nulls_equal=True, maintain_order="left")
        .with_columns(
            pl.col("outcome").fill_null(Outcome.PENDING.value),
            (
                (pl.col("in_doubt").fill_null(0) == 1)
                | (pl.col("outcome").is_null() & pl.col("key").is_in(doubtful.implode()))
            ).alias("in_doubt"),
            pl.col("attempts").fill_null(0),
        )
    )
    return _with_deadline(db, out, now=now)


def _with_deadline(
    db: sqlite3.Connection, out: pl.DataFrame, *, now: datetime | None
) -> pl.DataFrame:
    """The pairs' rows with received_at parsed, and their deadline and overdue flag."""
    now = now or datetime.now(UTC)
    days = deadline_days(db)
    out = out.with_columns(pl.col("received_at").str.to_datetime(time_zone="UTC", strict=False))
    finished = pl.col("outcome").is_in([o.value for o in ledger_mod.FINAL])
    deadline = (pl.col("received_at") + pl.duration(days=days)).dt.date()
    finished_date = pl.col("finished_at").str.to_datetime(time_zone="UTC", strict=False).dt.date()
    out = out.with_columns(deadline.alias("deadline")).with_columns(
        pl.when(pl.col("deadline").is_null())
        .then(None)
        .when(finished)
        .then(finished_date > pl.col("deadline"))
        .otherwise(pl.lit(now.date()) > pl.col("deadline"))
        .alias("overdue"),
        pl.lit(days).alias("deadline_days"),
    )
    return out.select(*REPORT_COLUMNS, "received_at", "deadline", "overdue")


def deadline_days(db: sqlite3.Connection) -> int:
    """deadline_days of the last run's settings (30 when unknown)."""
    if ledger_read.fast(db):
        return ledger_read.deadline_days(db)
    row = db.execute(
        "SELECT json_extract(detail, '$.settings.deadline_days') FROM events "
        "WHERE kind = 'run_started' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 30


def runs(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, oldest first: start, end, exit code, input, counts."""
    if ledger_read.fast(db):
        return ledger_read.runs(db)
    out = []
    for run, started_at, finished_at, exit_code, sha, rows, started, finished in db.execute(
        "SELECT run, started_at, finished_at, exit_code, input_sha256, input_rows, started, "
        "finished FROM runs ORDER BY run"
    ):
        start = json.loads(started or "{}")
        end = json.loads(finished or "null")
        out.append(
            {
                "run": run,
                "started_at": started_at,
                "finished_at": finished_at,
                "exit_code": exit_code,
                "input_sha256": sha,
                "input_rows": rows,
                "plan": start.get("plan"),
                "settings": start.get("settings"),
                "outcomes": end.get("outcomes") if end else None,
                "stop_reason": end.get("stop_reason") if end else None,
                "error": end.get("error") if end else None,
            }
        )
    return out


def status(
    db: sqlite3.Connection, *, now: datetime | None = None, table: pl.DataFrame | None = None
) -> dict[str, Any]:
    """Counts by outcome, pending, in doubt, overdue, and the last run.

    ``table`` is :func:`pairs`' result when the caller already has it. On a
    ledger with derived state the counts are read from its summaries.
    """
    if table is None and ledger_read.fast(db):
        return ledger_read.counts(db, now=now or datetime.now(UTC))
    events = _planned(db)
    table = _pairs(db, events, now=now) if table is None else table
    counts = dict(table.group_by("outcome").len().iter_rows())
    history = runs(db)
    last = history[-1] if history else None
    last_plan = _last_plan_pending(db, table, events)
    head = db.execute("SELECT seq, link FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return {
        "total": table.height,
        **{o.value: int(counts.get(o.value, 0)) for o in Outcome},
        "in_doubt": int(table["in_doubt"].sum()),
        "overdue": int(table["overdue"].fill_null(False).sum()),
        "requests": table.select(pl.col("request_id").drop_nulls().n_unique()).item(),
        "last_run": last,
        "last_run_pending": last_plan,
        "runs": len(history),
        "chain_head": {"seq": head[0], "link": head[1]} if head else None,
    }


def _last_plan_pending(
    db: sqlite3.Connection, table: pl.DataFrame, events: pl.DataFrame
) -> int | None:
    row = db.execute("SELECT max(run) FROM events WHERE kind = 'run_started'").fetchone()
    if not row or row[0] is None:
        return None
    planned = events.filter(pl.col("run") == row[0]).select("request_id", "key").unique()
    # a stopped run with a huge plan records only part of the unreached pairs
    unrecorded = db.execute(
        "SELECT coalesce(json_extract(detail, '$.unrecorded'), 0) FROM events "
        "WHERE kind = 'run_finished' AND run = ?",
        (row[0],),
    ).fetchone()
    final = table.filter(pl.col("outcome").is_in([o.value for o in ledger_mod.FINAL]))
    left = planned.join(
        final.select("request_id", "key"), on=["request_id", "key"], how="anti", nulls_equal=True
    )
    return left.height + (int(unrecorded[0]) if unrecorded else 0)


def lookup(db: sqlite3.Connection, keys: list[str]) -> pl.DataFrame:
    """The state of every pair whose key is one of ``keys`` (one indexed read)."""
    return pairs(db, keys=keys)


def erased_or_gone(rows: pl.DataFrame) -> bool:
    """True when every request's last outcome for the identifier is erased or not_found."""
    return (
        rows.height > 0
        and rows["outcome"].is_in([Outcome.ERASED.value, Outcome.NOT_FOUND.value]).all()
    )
