"""The report's rows: one per (request id, key), the invalid records, the reappeared profiles.

Read from the derived state: an indexed read of the rows asked for.
:mod:`erasure.status` counts from these rows; :mod:`erasure.report` writes them.
"""

from __future__ import annotations

import enum
import sqlite3
from datetime import UTC, datetime

import polars as pl

from erasure import deadline_table, partition
from erasure import ledger as ledger_mod
from erasure.ledger import Outcome
from erasure.ledger import read as ledger_read
from erasure.status_result import Reappeared

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
    by that run, of that request, or with one of those keys: an indexed
    read of only those.
    """
    rows = ledger_read.pairs(db, run=run, request_id=request_id, keys=keys)
    return _with_deadline(db, rows, now=now)


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
    # kept in invalid_state: archived records too
    return dated(db, ledger_read.invalid_records(db), now)


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
        *(pl.lit(None, ledger_read.INVALID_SCHEMA[c]).alias(c) for c in INVALID_COLUMNS),
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


NO_REAPPEARED = pl.DataFrame()  # no profile came back: nothing to read


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


def reappeared_counts(profiles: pl.DataFrame) -> Reappeared:
    """``status``'s ``reappeared``: profiles found again, by match and by where they stand."""
    by_match = dict(profiles.group_by("match").len().iter_rows()) if profiles.height else {}
    by_now = dict(profiles.group_by("now").len().iter_rows()) if profiles.height else {}
    return Reappeared(
        profiles=profiles.height,
        by_profile_id=int(by_match.get("profile_id", 0)),
        by_identifier=int(by_match.get("identifier", 0)),
        # a field per CameBack (tests/test_status_schema.py holds them equal)
        **{state.value: int(by_now.get(state.value, 0)) for state in CameBack},
    )
