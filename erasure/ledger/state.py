"""The derived state: what the commands read, kept beside the events in the same transaction.

The events stay the only source of truth. Triggers on ``events`` fold each
new event into a few tables (:data:`TABLES`), inside the transaction that
appends it, so that the state is never behind the events nor ahead of them::

    pair_state     one row per (request id, key): its first planning, its
                   last outcome and last final outcome, attempts, whether the
                   key is in doubt, how often the profile reappeared
    pair_runs      which runs planned which pair (a report of one run)
    request_state  per request id (one row, request_id NULL, for the pairs and
                   invalid records without one): counts per outcome, invalid
                   records (and how many are unresolved), reappearances, its
                   earliest received_at and latest outcome (the accounting's
                   deadline figures come from these, by index)
    invalid_state  one row per ``invalid`` event, and the ``resolved`` one
                   that resolved it
    run_state      per run: start and end events' times and details
    totals         counts over the whole ledger (status reads these)
    archives       the ``archived`` records (erasure.ledger.archive)
    decision_state one row per hold, release, cancel or reopen event (a
                   person's decision, erasure.decisions), and the release or
                   reopen that ended a hold or a cancellation
    plain_links    the plain SHA-256 chain (written by the writer, in Python:
                   SQLite has no SHA-256)

Every derived row carries ``last_seq``, the event that last changed it; a
guard trigger refuses an UPDATE that does not cite the newest event, and
every DELETE, so that only the writer's own triggers change derived rows.
A hand edit is still possible (drop the guard), and ``verify`` finds it:
it replays the events into a scratch database with the same triggers and
compares the tables (:mod:`erasure.ledger.replay`), as the migration does.

A ledger that was archived (erasure.ledger.archive) holds ``base_<table>``
copies of the state the archived events left; replay starts from them.

Longer than most modules: the derived tables and their triggers are SQL
text; splitting would separate a table from the trigger that keeps it.
"""

from __future__ import annotations

import sqlite3

from erasure import partition
from erasure.ledger.sqlscript import statements

# of the derived tables and triggers below; stored in state_meta (2: request_state keeps
# every request, the one without a request id too, and its state; 3: the partition of
# erasure.partition, with held and cancelled pairs counted per request, and a request's
# earliest received_at taken from its invalid records too; 4: the index of unfinished
# pairs by their first planning, erasure.ledger.inputs; 5: decision_state, the totals of
# held and cancelled pairs, and a decision's outcome leaves its key's doubt alone; 6:
# unusable received dates apart from the partition's invalid records, and a request's
# unknown deadline; 7: a sweep's deletes in sweep_state, apart from the input's pairs; 8:
# approvals in decision_state)
STATE_VERSION = "8"

TABLES = (
    "pair_state",
    "pair_runs",
    "key_state",
    "request_state",
    "invalid_state",
    "run_state",
    "totals",
    "archives",
    "decision_state",
    "sweep_state",
)
# Each table's primary key: the order in which tables are compared and hashed.
ORDER = {
    "pair_state": "pair",
    "pair_runs": "run, pair",
    "key_state": "key",
    "request_state": "request_id",
    "invalid_state": "seq",
    "run_state": "run",
    "totals": "name",
    "archives": "seq",
    "decision_state": "seq",
    "sweep_state": "export, key",
}
TOTALS = (
    "pairs",
    "requests",
    "erased",
    "not_found",
    "rejected",
    "failed",
    "pending",
    "held",  # pairs whose last outcome is held or cancelled (erasure.decisions)
    "cancelled",
    "invalid",
    "invalid_unresolved",
    "reappeared",
    # requests whose received dates were all unusable (erasure.partition.deadline_unknown)
    "deadline_unknown",
    # requests: each counted under its state, erasure.partition's (complete or its reason)
    *(f"requests_{state}" for state in (partition.COMPLETE, *partition.REASONS)),
)
_GUARD = "derived state changes only with the event that causes it"
_APPEND_ONLY = "the ledger is append-only"

# A person's decisions (erasure.decisions), one row per event; and the [approval]
# policies and approvals recorded (erasure.approval), so that they are found by index.
DECISIONS_SQL = """
CREATE TABLE decision_state (
    seq         INTEGER PRIMARY KEY,  -- the hold, release, cancel or reopen event
    kind        TEXT NOT NULL,        -- hold | release | cancel | reopen | policy | approval
    request_id  TEXT,                 -- the selector: a request ...
    key         TEXT,                 -- ... or an identifier's key
    decision_id TEXT,                 -- the decision's own id (a queued one is appended once)
    at          TEXT NOT NULL,        -- when it was decided (UTC ISO 8601)
    until       TEXT,                 -- a hold's end (UTC ISO 8601), NULL: until released
    reason      TEXT,
    who         TEXT,                 -- OS user@host
    ended_by    INTEGER,              -- the release or reopen event that ended it
    last_seq    INTEGER NOT NULL
) STRICT;
CREATE INDEX decision_state_open ON decision_state(kind) WHERE ended_by IS NULL;
CREATE INDEX decision_state_id ON decision_state(decision_id);
"""


TABLES_SQL = (
    """
CREATE TABLE IF NOT EXISTS state_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS plain_links (
    seq  INTEGER PRIMARY KEY,     -- the event's seq
    link TEXT NOT NULL            -- SHA-256(previous link + canonical bytes), hex
) STRICT;
CREATE TABLE pair_state (
    pair             INTEGER PRIMARY KEY,
    request_id       TEXT,
    key              TEXT NOT NULL,
    db_id            INTEGER,          -- db_id .. received_at: from the pair's first planning
    matching         TEXT,
    resource_id      INTEGER,
    field_name       TEXT,
    received_at      TEXT,
    first_planned    INTEGER NOT NULL, -- seq of the first 'planned'
    last_planned_run INTEGER NOT NULL,
    outcome          TEXT,             -- the last outcome (NULL: pending)
    in_doubt         INTEGER,          -- .. its fields
    profile_id       TEXT,
    error_code       INTEGER,
    error_text       TEXT,
    http_status      INTEGER,
    finished_at      TEXT,
    outcome_seq      INTEGER,
    final_outcome    TEXT,             -- the last final outcome (erased | not_found | rejected)
    final_seq        INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,  -- 'sent' for the key in runs planning the pair
    first_attempt_at TEXT,
    reappeared       INTEGER NOT NULL DEFAULT 0,  -- 'reappeared' events of the pair
    last_seq         INTEGER NOT NULL
) STRICT;
CREATE INDEX pair_state_key ON pair_state(key);
CREATE INDEX pair_state_request ON pair_state(request_id) WHERE request_id IS NOT NULL;
CREATE INDEX pair_state_in_doubt ON pair_state(pair) WHERE in_doubt = 1;
CREATE INDEX pair_state_received ON pair_state(received_at) WHERE received_at IS NOT NULL;
-- status's "overdue" by index: finished pairs by days from received to finished (a
-- range over this expression), unfinished ones (few) by received_at
CREATE INDEX pair_state_late
ON pair_state(julianday(date(finished_at)) - julianday(date(received_at)))
WHERE received_at IS NOT NULL AND outcome IN ('erased', 'not_found', 'rejected');
-- the open pairs, by the planning that first brought them (erasure.ledger.inputs:
-- what a later run carries over from an earlier input file)
CREATE INDEX pair_state_unfinished ON pair_state(first_planned)
WHERE outcome IS NULL OR outcome = 'failed';
CREATE INDEX pair_state_open ON pair_state(received_at)
WHERE received_at IS NOT NULL AND (outcome IS NULL OR outcome = 'failed');
CREATE TABLE key_state (
    key        TEXT PRIMARY KEY NOT NULL,
    doubt      INTEGER NOT NULL DEFAULT 0,  -- the key's history ends in doubt ...
    unanswered INTEGER NOT NULL DEFAULT 0,  -- ... or in a 'sent' with no answer yet
    last_seq   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX key_state_doubt ON key_state(key) WHERE doubt = 1 OR unanswered = 1;
CREATE TABLE pair_runs (
    run  INTEGER NOT NULL,
    pair INTEGER NOT NULL,
    PRIMARY KEY (run, pair)
) STRICT, WITHOUT ROWID;
CREATE TABLE request_state (
    request_id         TEXT,              -- NULL: the one row of everything without one
    pairs              INTEGER NOT NULL DEFAULT 0,
    erased             INTEGER NOT NULL DEFAULT 0,
    not_found          INTEGER NOT NULL DEFAULT 0,
    rejected           INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    pending            INTEGER NOT NULL DEFAULT 0,
    held               INTEGER NOT NULL DEFAULT 0,  -- pairs whose last outcome is 'held'
    cancelled          INTEGER NOT NULL DEFAULT 0,  -- .. 'cancelled' (erasure.partition)
    first_planned      INTEGER,
    last_finished_at   TEXT,              -- the latest outcome's time
    received_min       TEXT,              -- the earliest received_at of its pairs and its
                                          -- invalid records (rows with no usable identifier)
    invalid            INTEGER NOT NULL DEFAULT 0,
    invalid_unresolved INTEGER NOT NULL DEFAULT 0,  -- .. but unusable received dates
    dates_unresolved   INTEGER NOT NULL DEFAULT 0,  -- unresolved received_at_invalid records
    reappeared         INTEGER NOT NULL DEFAULT 0,
    last_seq           INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX request_state_id ON request_state(request_id);
CREATE UNIQUE INDEX request_state_anonymous ON request_state(1) WHERE request_id IS NULL;
-- the accounting's two deadline flags by index (erasure.ledger.read.account): requests
-- with an unfinished pair (few) by their earliest received_at; finished ones by the
-- days from their earliest received_at to their last outcome (a range over this;
-- "pairs - ... = 0", not "... = pairs", which the planner would not match to the index)
CREATE INDEX request_state_unfinished ON request_state(received_min)
WHERE """
    + partition.UNFINISHED_SQL
    + """ AND received_min IS NOT NULL;
CREATE INDEX request_state_late
ON request_state(julianday(date(last_finished_at)) - julianday(date(received_min)))
WHERE pairs - erased - not_found - rejected = 0 AND pairs > 0 AND received_min IS NOT NULL;
CREATE TABLE invalid_state (
    seq         INTEGER PRIMARY KEY,  -- the 'invalid' event
    run         INTEGER NOT NULL,
    request_id  TEXT,
    db_id       INTEGER,
    input       TEXT,                 -- sha256 of the input file
    row         INTEGER,
    col         TEXT,                 -- the user's header, or NULL
    reason      TEXT,
    words       TEXT,                 -- plain words that never quote the cell
    at          TEXT NOT NULL,        -- the event's time
    received_at TEXT,                 -- its request's earliest usable received_at
    resolved_by INTEGER,              -- the 'resolved' event, if any
    last_seq    INTEGER NOT NULL
) STRICT;
CREATE INDEX invalid_state_input ON invalid_state(input, row);
CREATE INDEX invalid_state_request ON invalid_state(request_id);
CREATE INDEX invalid_state_open ON invalid_state(seq) WHERE resolved_by IS NULL;
CREATE TABLE run_state (
    run         INTEGER PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    command     TEXT NOT NULL,        -- run | sweep | ...
    started_at  TEXT NOT NULL,
    started     TEXT,                 -- the run_started detail
    finished_at TEXT,
    finished    TEXT,                 -- the run_finished detail
    exit_code   INTEGER,
    last_seq    INTEGER NOT NULL
) STRICT;
CREATE TABLE totals (
    name     TEXT PRIMARY KEY,
    value    INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE archives (
    seq      INTEGER PRIMARY KEY,     -- the 'archived' event
    detail   TEXT NOT NULL,
    last_seq INTEGER NOT NULL
) STRICT;
-- a sweep's deletes (erasure.after.sweep), apart from the input's pairs: one row per
-- export (its SHA-256) and delete key; a later not_found never rewrites an erased
CREATE TABLE sweep_state (
    export        TEXT NOT NULL,
    key           TEXT NOT NULL,
    first_run     INTEGER NOT NULL,
    outcome       TEXT,               -- the last outcome (NULL: none yet)
    final_outcome TEXT,               -- erased once erased; else the last not_found
    final_seq     INTEGER,
    last_seq      INTEGER NOT NULL,
    PRIMARY KEY (export, key)
) STRICT, WITHOUT ROWID;
"""
    + DECISIONS_SQL
)


def _json(path: str) -> str:
    """A JSON field of NEW.detail, NULL when the detail is not JSON (never an error)."""
    return f"CASE WHEN json_valid(NEW.detail) THEN json_extract(NEW.detail, '{path}') END"


_PAIR = "key = NEW.key AND request_id IS NEW.request_id"


def why(row: str) -> str:
    """SQL: a request_state row's state: NULL (no request), ``complete`` or its reason.

    Generated from the one rule, erasure.partition (its counts are request_state's
    columns).
    """
    return partition.sql(row)


_FINAL = "('erased', 'not_found', 'rejected')"
# an event of a sweep's run (erasure.after.sweep), and the export that run read
_SWEEP_RUN = "EXISTS (SELECT 1 FROM run_state WHERE run = NEW.run AND command = 'sweep')"
_EXPORT = "(SELECT json_extract(started, '$.input.sha256') FROM run_state WHERE run = NEW.run)"
# an invalid record that counts in the partition: any but an unusable received date
_NOT_DATE = f"(NEW.reason IS NOT '{partition.DATE_REASON}')"

# A decision's row; a release (reopen) ends the open holds (cancellations) of the same
# selector, then is a row of its own.
DECISION_TRIGGERS_SQL = f"""
CREATE TRIGGER state_decision AFTER INSERT ON events
WHEN NEW.kind IN ('hold', 'release', 'cancel', 'reopen', 'policy', 'approval') BEGIN
    UPDATE decision_state SET ended_by = NEW.seq, last_seq = NEW.seq
    WHERE ended_by IS NULL
      AND kind = CASE NEW.kind WHEN 'release' THEN 'hold' WHEN 'reopen' THEN 'cancel' END
      AND request_id IS NEW.request_id AND key IS NEW.key;
    INSERT INTO decision_state (seq, kind, request_id, key, decision_id, at, until, reason,
                                who, last_seq)
    VALUES (NEW.seq, NEW.kind, NEW.request_id, NEW.key, {_json("$.id")},
            coalesce({_json("$.at")}, NEW.at), {_json("$.until")}, {_json("$.reason")},
            {_json("$.who")}, NEW.seq);
END;
"""


def _guards(table: str) -> str:
    """A derived table's guard triggers: an UPDATE cites the newest event; never a DELETE."""
    return f"""
CREATE TRIGGER {table}_guard BEFORE UPDATE ON {table}
WHEN NEW.last_seq IS NOT (SELECT max(seq) FROM events) BEGIN
    SELECT RAISE(ABORT, '{_GUARD}');
END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN
    SELECT RAISE(ABORT, '{_APPEND_ONLY}');
END;"""


TRIGGERS_SQL = (
    f"""
CREATE TRIGGER state_planned AFTER INSERT ON events
WHEN NEW.kind = 'planned' AND NOT {_SWEEP_RUN} BEGIN
    INSERT INTO pair_state (request_id, key, db_id, matching, resource_id, field_name,
                            received_at, first_planned, last_planned_run, last_seq)
    SELECT NEW.request_id, NEW.key, NEW.db_id, NEW.matching, NEW.resource_id, NEW.field_name,
           NEW.received_at, NEW.seq, NEW.run, NEW.seq
    WHERE NOT EXISTS (SELECT 1 FROM pair_state WHERE {_PAIR});
    UPDATE pair_state SET last_planned_run = NEW.run, last_seq = NEW.seq
    WHERE {_PAIR} AND last_planned_run != NEW.run;
    INSERT OR IGNORE INTO pair_runs (run, pair)
    SELECT NEW.run, pair FROM pair_state WHERE {_PAIR};
END;
CREATE TRIGGER state_sent AFTER INSERT ON events WHEN NEW.kind = 'sent' BEGIN
    INSERT INTO key_state (key, unanswered, last_seq) VALUES (NEW.key, 1, NEW.seq)
    ON CONFLICT (key) DO UPDATE SET unanswered = 1, last_seq = NEW.seq;
    UPDATE pair_state SET
        attempts = attempts + (last_planned_run = NEW.run),
        first_attempt_at = CASE WHEN last_planned_run = NEW.run
                                THEN coalesce(first_attempt_at, NEW.at)
                                ELSE first_attempt_at END,
        last_seq = NEW.seq
    WHERE key = NEW.key AND last_planned_run = NEW.run;
END;
CREATE TRIGGER state_attempt AFTER INSERT ON events WHEN NEW.kind = 'attempt' BEGIN
    INSERT INTO key_state (key, doubt, last_seq) VALUES (NEW.key, NEW.in_doubt IS 1, NEW.seq)
    ON CONFLICT (key) DO UPDATE SET unanswered = 0, doubt = max(doubt, NEW.in_doubt IS 1),
                                    last_seq = NEW.seq;
END;
CREATE TRIGGER state_withdrawn AFTER INSERT ON events WHEN NEW.kind = 'withdrawn' BEGIN
    INSERT INTO key_state (key, last_seq) VALUES (NEW.key, NEW.seq)
    ON CONFLICT (key) DO UPDATE SET unanswered = 0, last_seq = NEW.seq;
END;
CREATE TRIGGER state_outcome AFTER INSERT ON events WHEN NEW.kind = 'outcome' BEGIN
    -- a person's decision (run 0: held, cancelled, or open again) says nothing of the key's
    -- requests: its doubt stays as the run left it
    INSERT INTO key_state (key, doubt, last_seq)
    SELECT NEW.key, NEW.outcome IS 'failed' AND NEW.in_doubt IS 1, NEW.seq WHERE NEW.run != 0
    ON CONFLICT (key) DO UPDATE SET doubt = (NEW.outcome IS 'failed' AND NEW.in_doubt IS 1),
                                    unanswered = 0, last_seq = NEW.seq;
    -- an outcome always follows its pair's planning; one that does not (a hand-made
    -- ledger) still finishes its pair, as the events alone would say; a sweep's delete
    -- is no pair of an input (sweep_state)
    INSERT INTO pair_state (request_id, key, db_id, matching, resource_id, field_name,
                            received_at, first_planned, last_planned_run, last_seq)
    SELECT NEW.request_id, NEW.key, NEW.db_id, NEW.matching, NEW.resource_id, NEW.field_name,
           NEW.received_at, NEW.seq, NEW.run, NEW.seq
    WHERE NOT EXISTS (SELECT 1 FROM pair_state WHERE {_PAIR}) AND NOT {_SWEEP_RUN};
    UPDATE pair_state SET
        outcome = NEW.outcome, in_doubt = NEW.in_doubt, profile_id = NEW.profile_id,
        error_code = NEW.error_code, error_text = NEW.error_text,
        http_status = NEW.http_status, finished_at = NEW.at, outcome_seq = NEW.seq,
        final_outcome = CASE WHEN NEW.outcome IN {_FINAL} THEN NEW.outcome
                             ELSE final_outcome END,
        final_seq = CASE WHEN NEW.outcome IN {_FINAL} THEN NEW.seq ELSE final_seq END,
        last_seq = NEW.seq
    WHERE {_PAIR} AND NOT {_SWEEP_RUN};
END;
CREATE TRIGGER state_sweep_planned AFTER INSERT ON events
WHEN NEW.kind = 'planned' AND {_SWEEP_RUN} BEGIN
    INSERT OR IGNORE INTO sweep_state (export, key, first_run, last_seq)
    VALUES ({_EXPORT}, NEW.key, NEW.run, NEW.seq);
END;
CREATE TRIGGER state_sweep_outcome AFTER INSERT ON events
WHEN NEW.kind = 'outcome' AND {_SWEEP_RUN} BEGIN
    INSERT OR IGNORE INTO sweep_state (export, key, first_run, last_seq)
    VALUES ({_EXPORT}, NEW.key, NEW.run, NEW.seq);
    UPDATE sweep_state SET
        outcome = NEW.outcome,
        final_outcome = CASE WHEN final_outcome IS 'erased' THEN final_outcome
                             WHEN NEW.outcome IN ('erased', 'not_found') THEN NEW.outcome
                             ELSE final_outcome END,
        final_seq = CASE WHEN final_outcome IS 'erased' THEN final_seq
                         WHEN NEW.outcome IN ('erased', 'not_found') THEN NEW.seq
                         ELSE final_seq END,
        last_seq = NEW.seq
    WHERE export = {_EXPORT} AND key = NEW.key;
END;
CREATE TRIGGER state_run_started AFTER INSERT ON events WHEN NEW.kind = 'run_started' BEGIN
    INSERT OR IGNORE INTO run_state (run, first_seq, command, started_at, started, last_seq)
    VALUES (NEW.run, NEW.seq, coalesce({_json("$.command")}, 'run'), NEW.at, NEW.detail,
            NEW.seq);
END;
CREATE TRIGGER state_run_finished AFTER INSERT ON events WHEN NEW.kind = 'run_finished' BEGIN
    UPDATE run_state SET finished_at = NEW.at, finished = NEW.detail,
                         exit_code = {_json("$.exit_code")}, last_seq = NEW.seq
    WHERE run = NEW.run AND finished_at IS NULL;
END;
CREATE TRIGGER state_invalid AFTER INSERT ON events WHEN NEW.kind = 'invalid' BEGIN
    INSERT INTO request_state (request_id, last_seq) VALUES (NEW.request_id, NEW.seq)
    ON CONFLICT DO NOTHING;
    UPDATE request_state SET received_min = CASE
                                 WHEN received_min IS NULL THEN NEW.received_at
                                 ELSE min(received_min, NEW.received_at) END,
                             last_seq = NEW.seq
    WHERE request_id IS NEW.request_id AND NEW.received_at IS NOT NULL;
    INSERT INTO invalid_state (seq, run, request_id, db_id, input, row, col, reason, words, at,
                               received_at, last_seq)
    VALUES (NEW.seq, NEW.run, NEW.request_id, NEW.db_id, {_json("$.input")},
            {_json("$.row")}, {_json("$.column")}, {_json("$.reason")}, {_json("$.words")},
            NEW.at, NEW.received_at, NEW.seq);
END;
CREATE TRIGGER state_resolved AFTER INSERT ON events WHEN NEW.kind = 'resolved' BEGIN
    UPDATE invalid_state SET resolved_by = NEW.seq, last_seq = NEW.seq
    WHERE resolved_by IS NULL
      AND seq IN (SELECT value FROM json_each(
          CASE WHEN json_valid(NEW.detail) THEN NEW.detail ELSE '{{}}' END, '$.resolves'));
END;
CREATE TRIGGER state_reappeared AFTER INSERT ON events WHEN NEW.kind = 'reappeared' BEGIN
    UPDATE pair_state SET reappeared = reappeared + 1, last_seq = NEW.seq WHERE {_PAIR};
    UPDATE request_state SET reappeared = reappeared + 1, last_seq = NEW.seq
    WHERE request_id IS NEW.request_id;
    UPDATE totals SET value = value + 1, last_seq = NEW.seq WHERE name = 'reappeared';
END;
CREATE TRIGGER state_archived AFTER INSERT ON events WHEN NEW.kind = 'archived' BEGIN
    INSERT INTO archives (seq, detail, last_seq) VALUES (NEW.seq, NEW.detail, NEW.seq);
END;
"""
    + DECISION_TRIGGERS_SQL
    + f"""
CREATE TRIGGER pair_state_added AFTER INSERT ON pair_state BEGIN
    UPDATE totals SET value = value + 1, last_seq = NEW.last_seq
    WHERE name IN ('pairs', 'pending');
    INSERT INTO request_state (request_id, first_planned, last_seq)
    VALUES (NEW.request_id, NEW.first_planned, NEW.last_seq)
    ON CONFLICT DO NOTHING;
    UPDATE request_state SET pairs = pairs + 1, pending = pending + 1,
                             first_planned = coalesce(first_planned, NEW.first_planned),
                             received_min = CASE
                                 WHEN NEW.received_at IS NULL THEN received_min
                                 WHEN received_min IS NULL THEN NEW.received_at
                                 ELSE min(received_min, NEW.received_at) END,
                             last_seq = NEW.last_seq
    WHERE request_id IS NEW.request_id;
END;
CREATE TRIGGER pair_state_outcome AFTER UPDATE OF outcome_seq ON pair_state BEGIN
    UPDATE totals SET value = value - 1, last_seq = NEW.last_seq
    WHERE name = coalesce(OLD.outcome, 'pending') AND OLD.outcome IS NOT NEW.outcome;
    UPDATE totals SET value = value + 1, last_seq = NEW.last_seq
    WHERE name = coalesce(NEW.outcome, 'pending') AND OLD.outcome IS NOT NEW.outcome;
    UPDATE request_state SET
        erased = erased + (NEW.outcome IS 'erased') - (OLD.outcome IS 'erased'),
        not_found = not_found + (NEW.outcome IS 'not_found') - (OLD.outcome IS 'not_found'),
        rejected = rejected + (NEW.outcome IS 'rejected') - (OLD.outcome IS 'rejected'),
        failed = failed + (NEW.outcome IS 'failed') - (OLD.outcome IS 'failed'),
        pending = pending + (NEW.outcome IS NULL) - (OLD.outcome IS NULL),
        -- the partition's hook for erasure hold and cancel: an outcome 'held' or
        -- 'cancelled' (recorded by them) counts here, and the rule does the rest
        held = held + (NEW.outcome IS 'held') - (OLD.outcome IS 'held'),
        cancelled = cancelled + (NEW.outcome IS 'cancelled') - (OLD.outcome IS 'cancelled'),
        last_finished_at = max(coalesce(last_finished_at, ''), NEW.finished_at),
        last_seq = NEW.last_seq
    WHERE request_id IS NEW.request_id;
END;
CREATE TRIGGER request_state_added AFTER UPDATE OF pairs ON request_state
WHEN OLD.pairs = 0 AND NEW.pairs > 0 AND NEW.request_id IS NOT NULL BEGIN
    UPDATE totals SET value = value + 1, last_seq = NEW.last_seq WHERE name = 'requests';
END;
CREATE TRIGGER invalid_state_added AFTER INSERT ON invalid_state BEGIN
    UPDATE totals SET value = value + 1, last_seq = NEW.last_seq
    WHERE name IN ('invalid', 'invalid_unresolved');
    UPDATE request_state SET invalid = invalid + 1,
                             invalid_unresolved = invalid_unresolved + {_NOT_DATE},
                             dates_unresolved = dates_unresolved + NOT {_NOT_DATE},
                             last_seq = NEW.last_seq
    WHERE request_id IS NEW.request_id;
END;
CREATE TRIGGER invalid_state_resolved AFTER UPDATE OF resolved_by ON invalid_state
WHEN OLD.resolved_by IS NULL AND NEW.resolved_by IS NOT NULL BEGIN
    UPDATE totals SET value = value - 1, last_seq = NEW.last_seq
    WHERE name = 'invalid_unresolved';
    UPDATE request_state SET invalid_unresolved = invalid_unresolved - {_NOT_DATE},
                             dates_unresolved = dates_unresolved - NOT {_NOT_DATE},
                             last_seq = NEW.last_seq
    WHERE request_id IS NEW.request_id;
END;
CREATE TRIGGER request_state_deadline_unknown AFTER UPDATE ON request_state
WHEN {partition.deadline_unknown_sql("OLD")} IS NOT {partition.deadline_unknown_sql("NEW")}
BEGIN
    UPDATE totals SET value = value + (CASE WHEN {partition.deadline_unknown_sql("NEW")}
                                           THEN 1 ELSE -1 END),
                      last_seq = NEW.last_seq
    WHERE name = 'deadline_unknown';
END;
CREATE TRIGGER request_state_why AFTER UPDATE ON request_state
WHEN {why("OLD")} IS NOT {why("NEW")} BEGIN
    UPDATE totals SET value = value - 1, last_seq = NEW.last_seq
    WHERE name = 'requests_' || {why("OLD")};
    UPDATE totals SET value = value + 1, last_seq = NEW.last_seq
    WHERE name = 'requests_' || {why("NEW")};
END;
"""
    + "".join(_guards(table) for table in TABLES if table != "pair_runs")
    + "".join(
        f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN
    SELECT RAISE(ABORT, '{_APPEND_ONLY}');
END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN
    SELECT RAISE(ABORT, '{_APPEND_ONLY}');
END;"""
        for table in ("pair_runs", "plain_links", "state_meta")
    )
)


def create(db: sqlite3.Connection, *, with_triggers: bool = True) -> None:
    """Create the derived tables (empty, totals at zero) inside the caller's transaction.

    Those of an older state version, if any, are dropped first: they are
    derived, and the caller fills the new ones from a replay of the events.
    """
    _drop_older(db)
    for statement in statements(TABLES_SQL):
        db.execute(statement)
    db.executemany(
        "INSERT INTO totals (name, value, last_seq) VALUES (?, 0, 0)", [(n,) for n in TOTALS]
    )
    db.execute("INSERT INTO state_meta VALUES ('version', ?)", (STATE_VERSION,))
    if with_triggers:
        create_triggers(db)


def _drop_older(db: sqlite3.Connection) -> None:
    """Drop the derived tables and triggers of another state version (never an event)."""
    try:
        # main. throughout: a migration has the scratch replay attached
        row = db.execute("SELECT value FROM main.state_meta WHERE name = 'version'").fetchone()
    except sqlite3.OperationalError:
        return  # none yet
    if row is not None and row[0] == STATE_VERSION:
        return
    for (name,) in db.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' "
        "AND name LIKE 'state~_%' ESCAPE '~'"
    ).fetchall():
        db.execute(f"DROP TRIGGER main.{name}")
    for table in (*TABLES, "plain_links", "state_meta"):
        db.execute(f"DROP TABLE IF EXISTS main.{table}")  # its own triggers go with it


def _exists(db: sqlite3.Connection, table: str) -> bool:
    found = db.execute(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return found is not None


def create_triggers(db: sqlite3.Connection) -> None:
    for statement in statements(TRIGGERS_SQL):
        db.execute(statement)


def has_state(db: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether the ledger keeps derived state of this release's version (it was migrated)."""
    try:
        row = db.execute(f"SELECT value FROM {schema}.state_meta WHERE name = 'version'").fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row) and row[0] == STATE_VERSION
