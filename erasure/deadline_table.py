"""Deadlines over the ledger: the rule a run recorded, extensions, and the report's columns.

The rules themselves are :mod:`erasure.deadlines` (pure); this module reads
what they need from a ledger (the last run's settings, the ``extended``
events) and applies them to the pairs' rows and to the kept summaries.

A deadline is shown as an ISO 8601 instant with its offset, to the second
(``2026-03-11T23:59:59+03:00``, the end of the due day); ``overdue`` is
judged on exact instants against the deadline in force when it passed.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl

from erasure import deadlines, partition
from erasure.deadlines import Extension, Rule
from erasure.ledger import read as ledger_read
from erasure.ledger.details import ExtendedDetail, loads

EXTENDED = "extended"  # the event kind (erasure.ledger.events.Kind.EXTENDED)
# the literal kind lets SQLite use the partial index events_extended (erasure.ledger.store)
EXTENSIONS_SQL = "SELECT request_id, at, detail FROM events WHERE kind = 'extended' ORDER BY seq"


def rule_of_settings(settings: Mapping[str, Any] | None) -> Rule:
    """The rule a run's recorded settings name (``deadline_days`` for older runs; 30 days)."""
    s = settings or {}
    if s.get("deadline") is not None:
        name = str(s["deadline"])
        return deadlines.rule(
            name,
            # a preset's own limit (runs of 2026-12-04's main also recorded it beside the name)
            extension_max=None
            if name.strip().lower() in deadlines.PRESETS
            else s.get("extension_max"),
            timezone=s.get("timezone"),
            calendar=s.get("calendar"),
        )
    days = s.get("deadline_days")
    return deadlines.rule(
        deadline_days=int(days) if days is not None else None, timezone=s.get("timezone")
    )


def rule_of(db: sqlite3.Connection) -> Rule:
    """The deadline rule of the ledger's last run (30 days in UTC before any run)."""
    row = db.execute("SELECT started FROM run_state ORDER BY run DESC LIMIT 1").fetchone()
    detail = ledger_read.recorded(row[0]) if row else {}
    settings = detail.get("settings")
    return rule_of_settings(settings if isinstance(settings, dict) else None)


def extensions_of(db: sqlite3.Connection) -> dict[str, list[Extension]]:
    """Every recorded extension, by request id, in the order recorded."""
    found: dict[str, list[Extension]] = {}
    for request_id, at, detail in db.execute(EXTENSIONS_SQL):
        if request_id is None:
            continue
        to = loads(ExtendedDetail, detail).extended_to
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
#
# A deadline depends only on the day of receipt (in the rule's timezone), and
# rises with it. So the pairs are counted a day of receipt at a time, each a
# range over the index on received_at with that day's deadline as a bound:
# SQL does the work, Python computes one deadline per day. The few requests
# with an extension are then corrected one by one. Text comparisons hold
# because the ledger writes every instant in UTC ISO 8601 ("+00:00").

_FINAL_SQL = "('erased', 'not_found', 'rejected')"
_OPEN_SQL = "(outcome IS NULL OR outcome = 'failed')"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class _Day:
    low: str  # the day's first instant (UTC text, as received_at is written)
    high: str  # the next day's first instant
    due: str  # the deadline of a request received that day (UTC text)
    ends: datetime  # the same, as an instant


def _days_between(first: str | None, last: str | None, rule: Rule) -> list[_Day]:
    """Every day of receipt from ``first`` to ``last`` (received_at texts), with its deadline."""
    if first is None or last is None:
        return []
    tz = rule.zone
    day = deadlines.local_day(datetime.fromisoformat(first), rule)
    end = deadlines.local_day(datetime.fromisoformat(last), rule)
    found = []
    while day <= end:
        start = datetime.combine(day, time.min, tzinfo=tz)
        after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
        ends = deadlines.deadline(start, rule)
        # bounds as the ledger writes received_at (isoformat: no microseconds when zero),
        # so that a request received at midnight falls on its own day
        low, high = start.astimezone(UTC).isoformat(), after.astimezone(UTC).isoformat()
        found.append(_Day(low, high, _utc(ends), ends))
        day += timedelta(days=1)
    return found


def _cutoff(days: list[_Day], now: datetime) -> str | None:
    """Received before this instant (text): the deadline has passed at ``now``."""
    passed = [d for d in days if now > d.ends]
    return passed[-1].high if passed else None


def _late(received: str | None, finished: str | None, rule: Rule, exts: list[Extension]) -> bool:
    if received is None or finished is None:
        return False
    due = deadlines.deadline(datetime.fromisoformat(received), rule)
    return datetime.fromisoformat(finished) > deadlines.in_force(due, exts, rule)


def _open_late(received: str | None, now: datetime, rule: Rule, exts: list[Extension]) -> bool:
    if received is None:
        return False
    due = deadlines.deadline(datetime.fromisoformat(received), rule)
    return now > deadlines.in_force(due, exts, rule)


def plain(rule: Rule, extensions: Mapping[str, list[Extension]]) -> int | None:
    """The days of a rule the kept indexes answer directly (N days in UTC, no extension)."""
    if rule.period.unit is deadlines.Unit.DAYS and rule.timezone == "UTC" and not extensions:
        return rule.period.count
    return None


def overdue_count(
    db: sqlite3.Connection, rule: Rule, extensions: Mapping[str, list[Extension]], *, now: datetime
) -> int:
    """Pairs past their deadline in force (finished after it, or open and past it)."""
    days_ = plain(rule, extensions)
    if days_ is not None:
        return ledger_read.overdue(db, now=now, days=days_)
    first, last = db.execute(
        "SELECT min(received_at), max(received_at) FROM pair_state WHERE received_at IS NOT NULL"
    ).fetchone()
    days = _days_between(first, last, rule)
    late = 0
    for day in days:
        (n,) = db.execute(
            "SELECT count(*) FROM pair_state WHERE received_at >= ? AND received_at < ? "
            f"AND outcome IN {_FINAL_SQL} AND finished_at > ?",
            (day.low, day.high, day.due),
        ).fetchone()
        late += int(n)
    cutoff = _cutoff(days, now)
    open_ = 0
    if cutoff is not None:
        (open_,) = db.execute(
            "SELECT count(*) FROM pair_state WHERE received_at IS NOT NULL "
            f"AND {_OPEN_SQL} AND received_at < ?",
            (cutoff,),
        ).fetchone()
    total = late + int(open_)
    for request_id, exts in extensions.items():  # few: each pair judged again, as extended
        for received, outcome, finished in db.execute(
            "SELECT received_at, outcome, finished_at FROM pair_state WHERE request_id = ?",
            (request_id,),
        ):
            if outcome in ("erased", "not_found", "rejected"):
                total += _late(received, finished, rule, exts) - _late(received, finished, rule, [])
            elif outcome in (None, "failed"):
                total += _open_late(received, now, rule, exts) - _open_late(received, now, rule, [])
    return total


def deadline_flags(
    db: sqlite3.Connection, rule: Rule, extensions: Mapping[str, list[Extension]], *, now: datetime
) -> tuple[int, int]:
    """Requests open and past their deadline, and finished late, from request_state."""
    days_ = plain(rule, extensions)
    if days_ is not None:
        return ledger_read.deadline_flags(db, now=now, days=days_)
    unfinished = f"{partition.UNFINISHED_SQL} AND received_min IS NOT NULL"
    finished = (
        "pairs - erased - not_found - rejected = 0 AND pairs > 0 AND received_min IS NOT NULL"
    )
    first, last = db.execute(
        "SELECT min(received_min), max(received_min) FROM request_state "
        "WHERE received_min IS NOT NULL"
    ).fetchone()
    days = _days_between(first, last, rule)
    cutoff = _cutoff(days, now)
    open_past = 0
    if cutoff is not None:
        (open_past,) = db.execute(
            f"SELECT count(*) FROM request_state WHERE {unfinished} AND received_min < ?",
            (cutoff,),
        ).fetchone()
    # finished requests: each against its day's deadline (a day's text bounds, bisected)
    lows = [d.low for d in days]
    late = 0
    for request_id, received, finished_at in db.execute(
        f"SELECT request_id, received_min, last_finished_at FROM request_state WHERE {finished}"
    ):
        exts = extensions.get(request_id) if request_id is not None else None
        if exts:
            late += _late(received, finished_at, rule, exts)
            continue
        i = bisect.bisect_right(lows, received) - 1
        late += finished_at is not None and i >= 0 and finished_at > days[i].due
    for request_id, exts in extensions.items():  # the few extended open ones, judged again
        row = db.execute(
            f"SELECT received_min FROM request_state WHERE request_id = ? AND {unfinished}",
            (request_id,),
        ).fetchone()
        if row is not None:
            received = row[0]
            open_past += _open_late(received, now, rule, exts) - _open_late(received, now, rule, [])
    return int(open_past), int(late)
