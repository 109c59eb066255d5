"""The profiles sweeps found back after their erasure, as ``status`` and the reports read them.

A ``reappeared`` event (written by :mod:`erasure.after.sweep`) joined with
the outcome that first erased the profile and its new delete's outcome.
Read-only, no key needed, and no network code: ``status`` and ``report``
load this, not the sweep.
"""

from __future__ import annotations

import sqlite3

import polars as pl

__all__ = ["REAPPEARED_SCHEMA", "reappeared"]


_REAPPEARED_SQL = """
    SELECT r.seq, r.run, r.at, r.request_id, r.key, r.db_id, r.matching, r.profile_id,
           json_extract(r.detail, '$.match'), json_extract(r.detail, '$.decision'),
           json_extract(r.detail, '$.first_erased_seq'), f.at,
           json_extract(r.detail, '$.delete_key'), o.outcome, o.at
    FROM events r
    LEFT JOIN events f ON f.seq = json_extract(r.detail, '$.first_erased_seq')
    LEFT JOIN events o ON o.seq = (
        -- its delete's outcome in that sweep or one resuming it: erased once erased
        SELECT seq FROM events WHERE kind = 'outcome' AND run >= r.run
        AND key = json_extract(r.detail, '$.delete_key')
        AND request_id IS r.request_id
        ORDER BY outcome = 'erased' DESC, seq DESC LIMIT 1)
    WHERE r.kind = 'reappeared'
    ORDER BY r.seq
"""
REAPPEARED_SCHEMA = {
    "seq": pl.Int64,  # the reappeared event
    "run": pl.Int64,  # the sweep's run
    "at": pl.String,  # when the sweep found it (UTC ISO 8601)
    "request_id": pl.String,  # the request that had erased it
    "key": pl.String,  # the key that matched
    "db_id": pl.Int64,
    "matching": pl.String,  # of the key that matched
    "profile_id": pl.String,
    "match": pl.String,  # profile_id | identifier
    "decision": pl.String,  # deleted | waiting
    "first_erased_seq": pl.Int64,
    "first_erased_at": pl.String,
    "delete_key": pl.String,  # the delete by profile id (decision deleted)
    "outcome": pl.String,  # that delete's outcome in the sweep's run (null: none yet)
    "erased_again_at": pl.String,
}


def reappeared(db: sqlite3.Connection) -> pl.DataFrame:
    """Every ``reappeared`` event with its first erasure and its delete's outcome.

    For ``status`` and the reports: one row per profile a sweep found,
    oldest first (:data:`REAPPEARED_SCHEMA`). Read-only; no key needed.
    """
    rows = db.execute(_REAPPEARED_SQL).fetchall()
    return pl.DataFrame(rows, schema=REAPPEARED_SCHEMA, orient="row")
