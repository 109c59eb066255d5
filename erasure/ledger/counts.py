"""The accounting's reads of the ledger, by index on its derived state.

Totals, pairs in doubt or in flight, deadlines, invalid records, and each
request's partition reason: what ``status``, the reports and the receipts
count. :mod:`erasure.ledger.read` re-exports them with the rest of the reads;
:func:`frame` is the one way a query becomes a polars frame.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from erasure import partition


def frame(
    db: sqlite3.Connection, sql: str, schema: dict[str, Any], params: Sequence[Any] = ()
) -> pl.DataFrame:
    """A query's rows as a polars frame with a fixed schema (empty-safe)."""
    rows = db.execute(sql, params).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


_FINAL_SQL = "('erased', 'not_found', 'rejected')"


def totals(db: sqlite3.Connection) -> dict[str, int]:
    """The ``totals`` table: counts over the whole ledger, kept by the state triggers."""
    return {str(name): int(value) for name, value in db.execute("SELECT name, value FROM totals")}


def in_doubt_keys(db: sqlite3.Connection) -> list[str]:
    """The key of every pair in doubt (one entry per pair), from two partial indexes.

    A pair is in doubt when its last outcome was recorded in doubt, or when it
    has none and its key's last request may have reached the service
    unanswered: the same rule as :data:`_PAIR_SELECT`. Few in a healthy ledger.
    """
    sql = """
        SELECT key FROM pair_state WHERE in_doubt = 1
        UNION ALL  -- CROSS JOIN: the few keys in doubt first, then their pairs by index
        SELECT p.key FROM key_state k CROSS JOIN pair_state p ON p.key = k.key
        WHERE (k.doubt = 1 OR k.unanswered = 1) AND p.outcome IS NULL
    """
    return [str(key) for (key,) in db.execute(sql)]


def in_flight(db: sqlite3.Connection, run: int) -> set[str]:
    """Keys that ``run`` (the newest, running) sent and has no answer for yet.

    A key whose last event is a ``sent`` (key_state.unanswered; its
    ``last_seq`` is then that event) written since ``run`` started: by
    index, without reading the run's events.
    """
    sql = """
        SELECT k.key FROM key_state k
        WHERE (k.doubt = 1 OR k.unanswered = 1) AND k.unanswered = 1
          AND k.last_seq >= (SELECT first_seq FROM run_state WHERE run = ?)
    """
    return {str(key) for (key,) in db.execute(sql, (run,))}


def overdue(db: sqlite3.Connection, *, now: datetime, days: int) -> int:
    """Pairs past their deadline (received_at + ``days``): finished after it, or still open.

    Finished pairs by a range over the days from received to finished, open
    ones (few) one by one: both by partial index, as ``status.pairs``'
    ``overdue`` column counts them.
    """
    (late,) = db.execute(
        "SELECT count(*) FROM pair_state WHERE received_at IS NOT NULL "
        f"AND outcome IN {_FINAL_SQL} "
        "AND julianday(date(finished_at)) - julianday(date(received_at)) > ?",
        (days,),
    ).fetchone()
    (open_,) = db.execute(
        "SELECT count(*) FROM pair_state WHERE received_at IS NOT NULL "
        "AND (outcome IS NULL OR outcome = 'failed') AND ? > date(received_at, ?)",
        (now.date().isoformat(), f"+{days} days"),
    ).fetchone()
    return int(late) + int(open_)


def deadline_flags(db: sqlite3.Connection, *, now: datetime, days: int) -> tuple[int, int]:
    """Requests (open and past the deadline, finished late), by index over request_state.

    A request's deadline is its earliest received_at + ``days``; open: not
    every pair has a final outcome; late: every one has, the last after the
    deadline (the rules of ``status.request_states``).
    """
    (open_past,) = db.execute(
        "SELECT count(*) FROM request_state "
        f"WHERE {partition.UNFINISHED_SQL} AND received_min IS NOT NULL "
        "AND ? > date(received_min, ?)",
        (now.date().isoformat(), f"+{days} days"),
    ).fetchone()
    (late,) = db.execute(
        "SELECT count(*) FROM request_state "
        "WHERE pairs - erased - not_found - rejected = 0 AND pairs > 0 "
        "AND received_min IS NOT NULL "
        "AND julianday(date(last_finished_at)) - julianday(date(received_min)) > ?",
        (days,),
    ).fetchone()
    return int(open_past), int(late)


INVALID_SCHEMA = {
    "seq": pl.Int64,
    "run": pl.Int64,
    "request_id": pl.String,
    "db_id": pl.Int64,
    "input": pl.String,  # sha256 hex of the input file
    "row": pl.Int64,
    "column": pl.String,
    "reason": pl.String,
    "words": pl.String,
    "at": pl.String,
    "received_at": pl.String,  # its request's earliest usable received_at (ISO 8601)
    "resolved": pl.Boolean,
}


def invalid_records(
    db: sqlite3.Connection, *, request_id: str | None = None, unresolved: bool = False
) -> pl.DataFrame:
    """``invalid`` records from ``invalid_state``, oldest first (:data:`INVALID_SCHEMA`).

    All, or those of ``request_id``; with ``unresolved``, only those no later
    input resolved (by a partial index: the few a report of everything needs).
    """
    where = ["1"]
    params: list[Any] = []
    if request_id is not None:
        where.append("request_id = ?")
        params.append(request_id)
    if unresolved:
        where.append("resolved_by IS NULL")
    found = frame(
        db,
        "SELECT seq, run, request_id, db_id, input, row, col, reason, words, at, received_at, "
        f"resolved_by IS NOT NULL FROM invalid_state WHERE {' AND '.join(where)} ORDER BY seq",
        {**INVALID_SCHEMA, "resolved": pl.Int64},  # SQLite's 0/1
        params,
    )
    return found.with_columns(pl.col("resolved").cast(pl.Boolean))


def request_reasons(db: sqlite3.Connection, request_ids: Sequence[str | None]) -> pl.DataFrame:
    """(request_id, why) of these requests from ``request_state``: ``complete`` or the
    reason in the partition, by the rule erasure.partition generates."""
    wanted = json.dumps([r for r in request_ids if r is not None])
    rows = db.execute(
        f"SELECT r.request_id, {partition.sql('r')} FROM request_state r "
        "WHERE r.request_id IN (SELECT value FROM json_each(?)) "
        + ("OR r.request_id IS NULL" if None in request_ids else ""),
        (wanted,),
    ).fetchall()
    return pl.DataFrame(rows, schema={"request_id": pl.String, "why": pl.String}, orient="row")


def request_order(db: sqlite3.Connection, request_ids: Sequence[str | None]) -> pl.DataFrame:
    """(request_id, first_planned) of these requests: the seq of each one's first planning."""
    wanted = json.dumps([r for r in request_ids if r is not None])
    rows = db.execute(
        "SELECT request_id, first_planned FROM request_state "
        "WHERE request_id IN (SELECT value FROM json_each(?)) "
        + ("OR request_id IS NULL" if None in request_ids else ""),
        (wanted,),
    ).fetchall()
    return pl.DataFrame(
        rows, schema={"request_id": pl.String, "first_planned": pl.Int64}, orient="row"
    )
