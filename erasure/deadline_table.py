"""Deadlines over the ledger: the rule a run recorded, extensions, and the report's columns.

The rules themselves are :mod:`erasure.deadlines` (pure); this module reads
what they need from a ledger (the last run's settings, the ``extended``
events) and applies them to the pairs' rows and to the kept summaries.

A deadline is shown as an ISO 8601 instant with its offset, to the second
(``2026-03-11T23:59:59+03:00``, the end of the due day); ``overdue`` is
judged on exact instants against the deadline in force when it passed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from erasure import deadlines
from erasure.deadlines import Extension, Rule
from erasure.ledger import read as ledger_read

EXTENDED = "extended"  # the event kind (erasure.ledger.events.Kind.EXTENDED)
# the literal kind lets SQLite use the partial index events_extended (erasure.ledger.store)
EXTENSIONS_SQL = "SELECT request_id, at, detail FROM events WHERE kind = 'extended' ORDER BY seq"


def rule_of_settings(settings: Mapping[str, Any] | None) -> Rule:
    """The rule a run's recorded settings name (``deadline_days`` for older runs; 30 days)."""
    s = settings or {}
    if s.get("deadline") is not None:
        return deadlines.rule(
            str(s["deadline"]),
            extension_max=s.get("extension_max"),
            timezone=s.get("timezone"),
            calendar=s.get("calendar"),
        )
    days = s.get("deadline_days")
    return deadlines.rule(
        deadline_days=int(days) if days is not None else None, timezone=s.get("timezone")
    )


def rule_of(db: sqlite3.Connection) -> Rule:
    """The deadline rule of the ledger's last run (30 days in UTC before any run)."""
    if ledger_read.fast(db):
        row = db.execute("SELECT started FROM run_state ORDER BY run DESC LIMIT 1").fetchone()
    else:
        row = db.execute(
            "SELECT detail FROM events WHERE kind = 'run_started' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    detail = _json(row[0]) if row else {}
    settings = detail.get("settings")
    return rule_of_settings(settings if isinstance(settings, dict) else None)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def extensions_of(db: sqlite3.Connection) -> dict[str, list[Extension]]:
    """Every recorded extension, by request id, in the order recorded."""
    found: dict[str, list[Extension]] = {}
    for request_id, at, detail in db.execute(EXTENSIONS_SQL):
        to = _json(detail).get("extended_to")
        if request_id is None or not isinstance(to, str):
            continue
        found.setdefault(str(request_id), []).append(
            Extension(datetime.fromisoformat(at), date.fromisoformat(to))
        )
    return found


def with_deadlines(
    rows: pl.DataFrame,
    rule: Rule,
    extensions: Mapping[str, list[Extension]],
    *,
    now: datetime,
    finished: pl.Expr,
) -> pl.DataFrame:
    """``rows`` (with ``received_at`` a UTC datetime, ``request_id``, ``finished_at``) plus
    ``deadline`` and ``original_deadline`` (text, where extended) and ``overdue``.

    ``finished`` says which rows have a final outcome; the others are judged
    against ``now``. Raises :class:`erasure.deadlines.CalendarGap` (78) for a
    working-day rule and a received day outside the shipped calendar.
    """
    received = pl.col("received_at").dt.convert_time_zone(rule.timezone).dt.date()
    rows = rows.with_columns(received.alias("_received_day"))
    days = rows.get_column("_received_day").drop_nulls().unique().to_list()
    ends = {
        day: deadlines.end_of(deadlines.add(day, rule.period, rule.calendar), rule) for day in days
    }
    due = pl.DataFrame(
        {"_received_day": list(ends), "_original": [e.astimezone(UTC) for e in ends.values()]},
        schema={"_received_day": pl.Date, "_original": pl.Datetime("us", "UTC")},
    )
    rows = rows.join(due, on="_received_day", how="left", maintain_order="left")
    rows = rows.with_columns(pl.col("_original").alias("_in_force"))
    if extensions:
        rows = _extended(rows, rule, extensions)
    finished_at = pl.col("finished_at").str.to_datetime(time_zone="UTC", strict=False)
    overdue = (
        pl.when(pl.col("_in_force").is_null())
        .then(None)
        .when(finished)
        .then(finished_at > pl.col("_in_force"))
        .otherwise(pl.lit(now.astimezone(UTC)) > pl.col("_in_force"))
    )
    return rows.with_columns(
        _shown(pl.col("_in_force"), rule).alias("deadline"),
        pl.when(pl.col("_in_force") != pl.col("_original"))
        .then(_shown(pl.col("_original"), rule))
        .alias("original_deadline"),
        overdue.alias("overdue"),
    ).drop("_received_day", "_original", "_in_force")


def _extended(
    rows: pl.DataFrame, rule: Rule, extensions: Mapping[str, list[Extension]]
) -> pl.DataFrame:
    """The deadline in force of the rows whose request was extended (few), one by one."""
    mask = pl.col("request_id").is_in(pl.Series(list(extensions), dtype=pl.String).implode())
    some = rows.with_row_index("_i").filter(mask & pl.col("_original").is_not_null())
    if not some.height:
        return rows
    in_force = [
        deadlines.in_force(original, extensions[rid], rule).astimezone(UTC)
        for rid, original in some.select("request_id", "_original").iter_rows()
    ]
    fixed = pl.DataFrame(
        {"_i": some["_i"], "_new": in_force},
        schema={"_i": pl.UInt32, "_new": pl.Datetime("us", "UTC")},
    )
    return (
        rows.with_row_index("_i")
        .join(fixed, on="_i", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_new", "_in_force").alias("_in_force"))
        .drop("_i", "_new")
    )


def _shown(instant: pl.Expr, rule: Rule) -> pl.Expr:
    """An instant as reports show it: the rule's local time to the second, with its offset."""
    local = instant.dt.convert_time_zone(rule.timezone)
    offset = local.dt.strftime("%z")  # +0300
    return (
        local.dt.strftime("%Y-%m-%dT%H:%M:%S")
        + offset.str.slice(0, 3)
        + ":"
        + offset.str.slice(3, 2)
    )


def instant(shown: pl.Expr) -> pl.Expr:
    """A shown deadline back as an instant (UTC), the end of its second."""
    return shown.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%:z", time_zone="UTC", strict=False
    ) + pl.duration(microseconds=999_999)


# ---------------------------------------------------------------- the kept summaries (SQL)


class DueFunction:
    """``erasure_due(request_id, received_at)``: the deadline in force as a UTC ISO text
    with microseconds (the form of an event's ``at``), for SQL over the kept state."""

    def __init__(self, rule: Rule, extensions: Mapping[str, list[Extension]]) -> None:
        self.rule = rule
        self.extensions = extensions
        self.cache: dict[str, str] = {}
        self.error: deadlines.CalendarGap | None = None  # SQLite would hide it: raised after

    def __call__(self, request_id: str | None, received_at: str | None) -> str | None:
        if received_at is None:
            return None
        exts = self.extensions.get(request_id) if request_id is not None else None
        if exts is None and received_at in self.cache:
            return self.cache[received_at]
        try:
            moment = datetime.fromisoformat(received_at)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            end = deadlines.deadline(moment, self.rule)
        except deadlines.CalendarGap as exc:
            self.error = exc
            return None
        if exts:
            end = deadlines.in_force(end, exts, self.rule)
        text = end.astimezone(UTC).isoformat(timespec="microseconds")
        if exts is None:
            self.cache[received_at] = text
        return text


def plain(rule: Rule, extensions: Mapping[str, list[Extension]]) -> int | None:
    """The days of a rule the kept indexes answer directly (N days in UTC, no extension)."""
    if rule.period.unit is deadlines.Unit.DAYS and rule.timezone == "UTC" and not extensions:
        return rule.period.count
    return None


_FINAL_SQL = "('erased', 'not_found', 'rejected')"


def overdue_count(
    db: sqlite3.Connection, rule: Rule, extensions: Mapping[str, list[Extension]], *, now: datetime
) -> int:
    """Pairs past their deadline in force (finished after it, or open and past it)."""
    days = plain(rule, extensions)
    if days is not None:
        return ledger_read.overdue(db, now=now, days=days)
    due = DueFunction(rule, extensions)
    db.create_function("erasure_due", 2, due, deterministic=True)
    (late,) = db.execute(
        "SELECT count(*) FROM pair_state WHERE received_at IS NOT NULL "
        f"AND outcome IN {_FINAL_SQL} AND finished_at > erasure_due(request_id, received_at)"
    ).fetchone()
    (open_,) = db.execute(
        "SELECT count(*) FROM pair_state WHERE received_at IS NOT NULL "
        "AND (outcome IS NULL OR outcome = 'failed') AND ? > erasure_due(request_id, received_at)",
        (now.astimezone(UTC).isoformat(timespec="microseconds"),),
    ).fetchone()
    if due.error is not None:
        raise due.error
    return int(late) + int(open_)


def deadline_flags(
    db: sqlite3.Connection, rule: Rule, extensions: Mapping[str, list[Extension]], *, now: datetime
) -> tuple[int, int]:
    """Requests open and past their deadline, and finished late, from request_state."""
    days = plain(rule, extensions)
    if days is not None:
        return ledger_read.deadline_flags(db, now=now, days=days)
    due = DueFunction(rule, extensions)
    db.create_function("erasure_due", 2, due, deterministic=True)
    (open_past,) = db.execute(
        "SELECT count(*) FROM request_state "
        "WHERE pairs - erased - not_found - rejected > 0 AND received_min IS NOT NULL "
        "AND ? > erasure_due(request_id, received_min)",
        (now.astimezone(UTC).isoformat(timespec="microseconds"),),
    ).fetchone()
    (late,) = db.execute(
        "SELECT count(*) FROM request_state "
        "WHERE pairs - erased - not_found - rejected = 0 AND pairs > 0 "
        "AND received_min IS NOT NULL "
        "AND last_finished_at > erasure_due(request_id, received_min)"
    ).fetchone()
    if due.error is not None:
        raise due.error
    return int(open_past), int(late)
