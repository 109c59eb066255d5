"""Read-only views of the ledger: per-pair state, status counts, lookup.

Safe while a run writes (the ledger is opened read-only; SQLite's WAL gives
a consistent snapshot). Nothing here needs the API token; ``lookup`` needs
the ledger key to compute the key of the identifier asked about.

Longer than most modules: the same figures read two ways, from the kept
summaries and, for a ledger not yet migrated, from the events, side by side
so that the two halves of the differential test read together.
"""

from __future__ import annotations

import enum
import json
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

_INVALID_SQL = """
    SELECT seq, run, request_id, db_id, json_extract(detail, '$.input'),
           json_extract(detail, '$.row'), json_extract(detail, '$.column'),
           json_extract(detail, '$.reason'), json_extract(detail, '$.words'), at, received_at
    FROM events WHERE kind = 'invalid' ORDER BY seq
"""
# the kept invalid records' columns, less what the event scan derives afterwards
_INVALID_SCHEMA = {k: v for k, v in ledger_read.INVALID_SCHEMA.items() if k != "resolved"}
_RESOLVED_SQL = """
    SELECT j.value FROM events AS e, json_each(json_extract(e.detail, '$.resolves')) AS j
    WHERE e.kind = 'resolved'
"""

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
    """The pairs' rows with received_at parsed, and their deadline (in force) and overdue flag.

    The rules are erasure.deadlines'; erasure.deadline_table applies them.
    """
    now = now or datetime.now(UTC)
    out = out.with_columns(pl.col("received_at").str.to_datetime(time_zone="UTC", strict=False))
    finished = pl.col("outcome").is_in([o.value for o in ledger_mod.FINAL])
    out = deadline_table.with_deadlines(
        out,
        deadline_table.rule_of(db),
        deadline_table.extensions_of(db),
        now=now,
        finished=finished,
    )
    return out.select(*REPORT_COLUMNS, *_DEADLINE_EXTRA)


def invalid_records(db: sqlite3.Connection, *, now: datetime | None = None) -> pl.DataFrame:
    """Every ``invalid`` event, oldest first, with ``resolved`` (a later input fixed it).

    Also ``received_at`` (parsed) and ``deadline``: its request's, as its pairs have them.
    """
    if ledger_read.fast(db):  # kept in invalid_state: archived records too
        return dated(db, ledger_read.invalid_records(db), now)
    found = ledger_mod.frame(db, _INVALID_SQL, _INVALID_SCHEMA)
    done = [int(seq) for (seq,) in db.execute(_RESOLVED_SQL)]
    found = found.with_columns(
        resolved=pl.col("seq").is_in(pl.Series(done, dtype=pl.Int64).implode())
    )
    return dated(db, found, now)


def dated(db: sqlite3.Connection, found: pl.DataFrame, now: datetime | None) -> pl.DataFrame:
    """Invalid records with their request's received_at parsed and its deadline."""
    found = found.with_columns(pl.col("received_at").str.to_datetime(time_zone="UTC", strict=False))
    if not found.get_column("received_at").is_not_null().any():
        return found.with_columns(pl.lit(None, pl.String).alias("deadline"))
    dated = deadline_table.with_deadlines(
        found.with_columns(pl.lit(None, pl.String).alias("finished_at")),
        deadline_table.rule_of(db),
        deadline_table.extensions_of(db),
        now=now or datetime.now(UTC),
        finished=pl.lit(False),
    )
    return found.with_columns(dated.get_column("deadline"))


INVALID_COLUMNS = ("row", "column", "reason")  # the report's columns for invalid records


def report_rows(
    pairs_: pl.DataFrame, invalid: pl.DataFrame, came_back: pl.DataFrame | None = None
) -> pl.DataFrame:
    """:func:`pairs` and the unresolved invalid records as one table, in the report's columns.

    An invalid record is a row with outcome ``invalid``, an empty key and its
    ``row``, ``column`` and ``reason`` (a code); never the cell. Rows are
    grouped by request, in the order each request first appears.
    ``came_back`` is :func:`reappeared_records`' table: the pairs it names
    carry ``reappeared = true`` (false elsewhere).
    """
    open_ = invalid.filter(~pl.col("resolved"))
    bad = open_.select(
        "request_id",
        pl.lit(None, pl.String).alias("key"),
        "db_id",
        pl.lit(None, pl.String).alias("matching"),
        pl.lit("invalid").alias("outcome"),
        *INVALID_COLUMNS,
        # the request's received date and deadline (a request with no usable identifier
        # has one too); an invalid row is never itself overdue
        *(c for c in ("received_at", "deadline") if c in open_.columns),
        order=pl.col("seq"),
    )
    good = pairs_.with_columns(
        *(pl.lit(None, _INVALID_SCHEMA[c]).alias(c) for c in INVALID_COLUMNS),
        order=pl.int_range(pl.len(), dtype=pl.Int64) - (1 << 40),
    )
    both = pl.concat([good, bad], how="diagonal_relaxed")
    first = both.group_by("request_id", maintain_order=True).agg(pl.col("order").min().alias("g"))
    both = both.join(first, on="request_id", how="left", nulls_equal=True, maintain_order="left")
    both = both.sort("g", "order", maintain_order=True)
    flagged = _reappeared_pairs(came_back)
    both = both.join(
        flagged, on=["request_id", "key"], how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(pl.col(REAPPEARED_COLUMN).fill_null(False))
    return both.select(*REPORT_COLUMNS, *INVALID_COLUMNS, *_DEADLINE_EXTRA, REAPPEARED_COLUMN)


# original_deadline: where an extension moved the deadline (erasure extend), else empty
_DEADLINE_EXTRA = ("received_at", "deadline", "overdue", "original_deadline")
REAPPEARED_COLUMN = "reappeared"  # a profile sweep found again
# The report's last columns, after ``reappeared``, in the contract's order: the request's
# state (complete | incomplete) and its reason in the partition (erasure.partition), then
# the extended deadline's original, the suppression list and a person's decision (held,
# cancelled or approved), filled by the features that make them (empty until then).
REQUEST_COLUMNS = (
    "request_status",
    "request_reason",
    "original_deadline",
    "suppressed",
    "decision",
)
_REQUEST_SCHEMA = {
    "request_status": pl.String,
    "request_reason": pl.String,
    "original_deadline": pl.String,
    "suppressed": pl.String,
    "decision": pl.String,
}


def with_request_state(rows: pl.DataFrame, states: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with :data:`REQUEST_COLUMNS` appended: each row's request's state.

    ``states`` has ``request_id`` and ``why`` (:func:`request_states`, or
    :func:`erasure.ledger.read.request_reasons`): computed over the whole
    request, also where ``rows`` hold only some of its pairs (one run's report).
    """
    why = states.select("request_id", "why").unique("request_id", keep="first")
    joined = rows.join(why, on="request_id", how="left", nulls_equal=True, maintain_order="left")
    complete = pl.col("why") == partition.COMPLETE
    return joined.with_columns(
        pl.when(pl.col("why").is_null())
        .then(None)
        .when(complete)
        .then(pl.lit("complete"))
        .otherwise(pl.lit("incomplete"))
        .alias("request_status"),
        pl.when(complete).then(None).otherwise(pl.col("why")).alias("request_reason"),
        *(
            pl.lit(None, _REQUEST_SCHEMA[c]).alias(c)
            for c in REQUEST_COLUMNS[2:]
            if c not in rows.columns  # original_deadline: filled by the pairs' deadlines
        ),
    ).drop("why")


_NO_REAPPEARED = pl.DataFrame()  # no profile came back: nothing to read


def reappeared_records(db: sqlite3.Connection) -> pl.DataFrame:
    """Every ``reappeared`` event (:func:`erasure.ledger.reappeared.reappeared`), oldest first.

    Plus ``first_erased_key``: the key of the outcome that first erased the
    profile (for a match by profile id, the event's own key is the profile
    id's, so the request's original identifier is found through this one).
    """
    from erasure.ledger.reappeared import reappeared

    found = reappeared(db)
    firsts = ledger_mod.frame(
        db,
        "SELECT seq, key FROM events WHERE seq IN "
        "(SELECT json_extract(detail, '$.first_erased_seq') FROM events "
        "WHERE kind = 'reappeared')",
        {"first_erased_seq": pl.Int64, "first_erased_key": pl.String},
    )
    return found.join(firsts, on="first_erased_seq", how="left", maintain_order="left")


def _reappeared_pairs(came_back: pl.DataFrame | None) -> pl.DataFrame:
    """(request_id, key) pairs of profiles found again: the key that matched and the delete's."""
    schema = {"request_id": pl.String, "key": pl.String}
    if came_back is None or not came_back.height:
        return pl.DataFrame(schema=schema).with_columns(pl.lit(True).alias(REAPPEARED_COLUMN))
    matched = pl.concat(
        [
            came_back.select("request_id", "key"),
            came_back.select("request_id", pl.col("first_erased_key").alias("key")),
        ]
    ).drop_nulls("key")
    deleted = came_back.filter(pl.col("delete_key").is_not_null()).select(
        "request_id", pl.col("delete_key").alias("key")
    )
    return (
        pl.concat([matched, deleted])
        .unique(maintain_order=True)
        .with_columns(pl.lit(True).alias(REAPPEARED_COLUMN))
    )


class CameBack(enum.StrEnum):
    """Where a profile found again by ``sweep`` stands now: a closed set."""

    # Deleted again by profile id, and the service confirmed it.
    ERASED_AGAIN = "erased_again"
    # Deleted again, but that delete has no final erased/not_found yet (the next sweep retries).
    DELETE_OPEN = "delete_open"
    # Shares only an identifier with an erased request: a person decides.
    WAITING = "waiting"


def reappeared_profiles(came_back: pl.DataFrame) -> pl.DataFrame:
    """One row per profile found again (db_id, profile_id), its latest state, oldest first.

    Columns: db_id, profile_id, request_id, match (profile_id | identifier),
    first_erased_at, found_at (the first sweep that found it), erased_again_at
    (null until erased again), ``now`` (:class:`CameBack`).
    """
    schema = {
        "db_id": pl.Int64,
        "profile_id": pl.String,
        "request_id": pl.String,
        "match": pl.String,
        "first_erased_at": pl.String,
        "found_at": pl.String,
        "erased_again_at": pl.String,
        "now": pl.String,
    }
    if not came_back.height:
        return pl.DataFrame(schema=schema)
    done = pl.col("outcome").is_in([Outcome.ERASED.value, Outcome.NOT_FOUND.value])
    latest = came_back.group_by("db_id", "profile_id", maintain_order=True).agg(
        pl.col("request_id").first(),
        pl.col("match").first(),
        pl.col("first_erased_at").first(),
        pl.col("at").min().alias("found_at"),
        pl.col("erased_again_at").filter(done).max().alias("erased_again_at"),
        pl.col("decision").last().alias("decision"),
        done.any().alias("done"),
    )
    now = (
        pl.when(pl.col("done"))
        .then(pl.lit(CameBack.ERASED_AGAIN.value))
        .when(pl.col("decision") == "waiting")
        .then(pl.lit(CameBack.WAITING.value))
        .otherwise(pl.lit(CameBack.DELETE_OPEN.value))
    )
    return latest.with_columns(now.alias("now")).select(*schema)


def reappeared_counts(profiles: pl.DataFrame) -> dict[str, int]:
    """``status``'s ``reappeared``: profiles found again, by match and by where they stand."""
    by_match = dict(profiles.group_by("match").len().iter_rows()) if profiles.height else {}
    by_now = dict(profiles.group_by("now").len().iter_rows()) if profiles.height else {}
    return {
        "profiles": profiles.height,
        "by_profile_id": int(by_match.get("profile_id", 0)),
        "by_identifier": int(by_match.get("identifier", 0)),
        **{state.value: int(by_now.get(state.value, 0)) for state in CameBack},
    }


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


def _in_flight(db: sqlite3.Connection, run: int) -> set[str]:
    """Keys the running run sent and has no answer for yet."""
    sql = """
        SELECT key FROM events WHERE kind IN ('sent', 'attempt', 'withdrawn', 'outcome')
          AND run = ? AND key IS NOT NULL
        GROUP BY key
        HAVING max(CASE WHEN kind = 'sent' THEN seq END)
               > coalesce(max(CASE WHEN kind != 'sent' THEN seq END), 0)
    """
    return {key for (key,) in db.execute(sql, (run,))}


def status(
    db: sqlite3.Connection,
    *,
    now: datetime | None = None,
    table: pl.DataFrame | None = None,
    is_running: bool = False,
) -> dict[str, Any]:
    """Counts by outcome, pending, in doubt, invalid, overdue, the accounting and the last run.

    ``table`` is :func:`pairs`' result when the caller already has it.
    ``is_running``: a run holds the ledger now (:func:`running`); its
    unanswered requests are then "in flight", not in doubt. Every count comes
    from one :func:`snapshot` of the ledger.

    On a ledger with derived state (and no ``table``) every figure comes
    from its summaries and partial indexes (:func:`_status_kept`): the cost
    does not grow with the history, and archived requests count as before.
    """
    with snapshot(db):
        if table is None and ledger_read.fast(db):
            return _status_kept(db, now=now or datetime.now(UTC), is_running=is_running)
        return _status(db, now=now, table=table, is_running=is_running)


def _status(
    db: sqlite3.Connection,
    *,
    now: datetime | None,
    table: pl.DataFrame | None,
    is_running: bool,
) -> dict[str, Any]:
    events = _planned(db)
    table = _pairs(db, events, now=now) if table is None else table
    history = runs(db)
    last = history[-1] if history else None
    flying: set[str] = set()
    if is_running and last is not None and last["finished_at"] is None:
        flying = _in_flight(db, last["run"])
        table = table.with_columns(
            pl.col("in_doubt")
            & ~pl.col("key").is_in(pl.Series(sorted(flying), dtype=pl.String).implode())
        )
    invalid = invalid_records(db)
    rows = report_rows(table, invalid)
    states = request_states(rows, now=now)
    resolved = int(invalid["resolved"].sum()) if invalid.height else 0
    acc = ledger_account(table, states, invalid.height - resolved, resolved)
    came_back = reappeared_counts(reappeared_profiles(reappeared_records(db)))
    counts = dict(table.group_by("outcome").len().iter_rows())
    last_plan = _last_plan_pending(db, table, events)
    head = db.execute("SELECT seq, link FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    run_now = None
    if is_running and last is not None and last["finished_at"] is None:
        run_now = {"run": last["run"], "since": last["started_at"], "in_flight": len(flying)}
    return {
        "total": table.height,
        **{o.value: int(counts.get(o.value, 0)) for o in Outcome},
        "in_doubt": int(table["in_doubt"].sum()),
        "invalid": acc.unresolved,
        "overdue": int(table["overdue"].fill_null(False).sum()),
        "requests": acc.requests,
        "incomplete_reasons": dict(acc.incomplete_reasons),
        "deadline_unknown": acc.deadline_unknown,
        "sweep_deletes": sweeps.counts(db),  # a sweep's deletes, apart from the pairs
        "accounting": acc.as_dict(),
        "verdict": acc.verdict,
        # a ledger not yet migrated keeps no index of open pairs: the next run migrates it
        "open_elsewhere": [],
        "safe_to_delete": [],
        "reappeared": came_back,
        "running": run_now,
        "last_run": last,
        "last_run_pending": last_plan,
        "runs": len(history),
        "chain_head": {"seq": head[0], "link": head[1]} if head else None,
    }


def _status_kept(db: sqlite3.Connection, *, now: datetime, is_running: bool) -> dict[str, Any]:
    """:func:`status` from the derived state: the same dict, read from summaries."""
    history = runs(db)
    last = history[-1] if history else None
    flying: set[str] = set()
    run_now = None
    if is_running and last is not None and last["finished_at"] is None:
        flying = ledger_read.in_flight(db, last["run"])
        run_now = {"run": last["run"], "since": last["started_at"], "in_flight": len(flying)}
    # a pair in doubt whose key is in flight is waiting for its answer, not in doubt
    in_doubt = sum(1 for key in ledger_read.in_doubt_keys(db) if key not in flying)
    rule, extended = deadline_table.rule_of(db), deadline_table.extensions_of(db)
    open_past, late = deadline_table.deadline_flags(db, rule, extended, now=now)
    totals = ledger_read.totals(db)
    acc = ledger_account_from_summaries(
        totals, in_doubt=in_doubt, open_past_deadline=open_past, finished_late=late
    )
    head = ledger_read.head(db)
    return {
        "total": acc.pairs,
        **{o.value: int(totals.get(o.value, 0)) for o in Outcome},
        "in_doubt": in_doubt,
        "invalid": acc.unresolved,
        "overdue": deadline_table.overdue_count(db, rule, extended, now=now),
        "requests": acc.requests,
        "incomplete_reasons": dict(acc.incomplete_reasons),
        "deadline_unknown": acc.deadline_unknown,
        "sweep_deletes": sweeps.counts(db),  # a sweep's deletes, apart from the pairs
        "accounting": acc.as_dict(),
        **(inputs := _inputs(db)),
        "verdict": acc.verdict + _elsewhere_words(inputs["open_elsewhere"]),
        "running": run_now,
        "last_run": last,
        "last_run_pending": ledger_read.last_run_pending(db, last["run"]) if last else None,
        "runs": len(history),
        "chain_head": {"seq": head[0], "link": head[1]} if head else None,
        # the reappeared events are read only when the kept total says there are any
        "reappeared": reappeared_counts(
            reappeared_profiles(
                reappeared_records(db) if totals.get("reappeared", 0) else _NO_REAPPEARED
            )
        ),
    }


def _elsewhere_words(missing: list[dict[str, Any]]) -> str:
    """The verdict's words for open pairs whose input file is gone or changed (none: "")."""
    if not missing:
        return ""
    n = sum(int(m["open"]) for m in missing)
    files = ", ".join(str(m["file"]) for m in missing)
    return f" {n} pairs of earlier input files are still open and their files gone: {files}."


def _inputs(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Earlier input files: open pairs whose file is gone or changed, and files safe to delete."""
    from erasure.carry import open_elsewhere

    missing, done = open_elsewhere(db)
    return {
        "open_elsewhere": [m.as_dict() for m in missing],
        "safe_to_delete": [{"file": f.name, "path": f.path, "sha256": f.sha256} for f in done],
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
