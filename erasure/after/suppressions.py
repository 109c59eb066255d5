"""What the ledger says of suppression lists: the events' statuses, the report's column.

Light (polars and SQLite only): the report reads it without the HTTP side
(:mod:`erasure.after.suppress`).
"""

from __future__ import annotations

import enum
import sqlite3

import polars as pl

# Partial indexes on the events of the steps after the delete, so that a run, a report
# or erasure notify reads those events without scanning the ledger's history. Not
# part of any chain; made by the first run (or erasure notify) that needs them,
# under the ledger's lock (ensure_indexes). The queries name the kind as a literal,
# which is what lets SQLite use a partial index.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_suppression ON events(seq) WHERE kind = 'suppression'",
    "CREATE INDEX IF NOT EXISTS events_notice ON events(seq) WHERE kind = 'notice'",
)


def ensure_indexes(db: sqlite3.Connection) -> None:
    """Make :data:`INDEXES` (the writer's connection, under the ledger's lock)."""
    for sql in INDEXES:
        db.execute(sql)
    db.commit()


class Status(enum.StrEnum):
    """What became of one addition (a suppression event's ``status``): a closed set."""

    ADDED = "added"  # on the list (newly, or it already was)
    FAILED = "failed"  # the call failed; the next run tries again
    CHECK_FAILED = "check_failed"  # the list's check failed: nothing was added to it


# ---------------------------------------------------------------- reading the ledger


def suppressed_by_key(db: sqlite3.Connection) -> pl.DataFrame:
    """Per key, what the report's ``suppressed`` column says: its list's last word.

    "kept on suppression list 7" once an addition is recorded; "not on
    suppression list 7 (http_500): the next run tries again" while only
    failures are. Reads the ``suppression`` events, by :data:`INDEXES` where
    a run has made them (else a scan of the events).
    """
    rows = db.execute(
        "SELECT key, json_extract(detail, '$.list'), json_extract(detail, '$.status'),"
        " json_extract(detail, '$.reason') FROM events WHERE kind = 'suppression' ORDER BY seq",
    ).fetchall()
    words: dict[str, str] = {}
    for key, list_id, status, reason in rows:
        if status == Status.ADDED.value:
            words[key] = f"kept on suppression list {list_id}"
        elif not words.get(key, "").startswith("kept"):
            words[key] = f"not on suppression list {list_id} ({reason}): the next run tries again"
    return pl.DataFrame(
        {"key": list(words), "suppressed": list(words.values())},
        schema={"key": pl.String, "suppressed": pl.String},
    )


def with_suppressed(db: sqlite3.Connection, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (a report's) with its ``suppressed`` column filled from the ledger."""
    found = suppressed_by_key(db)
    if not found.height:
        return rows
    rows = rows.drop("suppressed", strict=False)
    return rows.join(found, on="key", how="left", maintain_order="left")
