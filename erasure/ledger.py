"""The ledger: one SQLite file, append-only, each event chained by a keyed hash.

Tables (readable with ``sqlite3``)::

    meta(name, value)     how keys are derived: schema, normalisation and
                          derivation versions, the ledger key's fingerprint
    events(seq, ...)      everything that happened, in order; never updated
    runs                  a view: one row per run, from its start and end events

Event kinds, a closed set (:class:`Kind`):

    created       seq 1: the meta values, so that the chain covers them
    run_started   a run began: settings (no secrets), input hash and rows, plan
    planned       a (request id, key) pair this run means to finish
    sent          a request for a key is about to leave (committed first)
    withdrawn     a committed "sent" whose request never left (clean stop)
    attempt       a non-final answer or transport failure of one request
    outcome       the outcome of a (request id, key) pair in this run
    run_finished  the run ended: exit code and counts

Each event's ``link`` is HMAC(ledger key, previous link, canonical content):
no one without the key can change, remove, insert or reorder an event and
recompute the chain, and ``verify`` names the first event that breaks it.
UPDATE and DELETE are refused by triggers.

Only one process writes at a time (a lock file beside the ledger, released
by the OS when its holder dies); readers open the file read-only and may
read while a run writes.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import filelock
import orjson
import polars as pl

from erasure.errors import FileMissing, LedgerBusy, LedgerMismatch, LedgerWriteError
from erasure.files import OWNER_ONLY, Perms, precreate
from erasure.job import Matching
from erasure.keys import NORMALISATION_VERSION, Keyer, Role

SCHEMA_VERSION = "1"
GENESIS = "0" * 64  # the link before the first event


class Kind(enum.StrEnum):
    CREATED = "created"
    RUN_STARTED = "run_started"
    PLANNED = "planned"
    SENT = "sent"
    WITHDRAWN = "withdrawn"
    ATTEMPT = "attempt"
    OUTCOME = "outcome"
    RUN_FINISHED = "run_finished"
    # An unusable input cell, or a row with no identifier (issue 12); detail holds
    # input (sha256), row, column, reason, words: never the cell's value.
    INVALID = "invalid"
    # A later input brought a usable value for an unresolved invalid record's
    # (request id, column); detail.resolves lists the seqs it resolves.
    RESOLVED = "resolved"


class Outcome(enum.StrEnum):
    """What became of one identifier for one request: a closed set."""

    # HTTP 2xx with error 0: the service erased the profile.
    ERASED = "erased"
    # A configured not_found code: nothing to erase (already gone, or never there).
    NOT_FOUND = "not_found"
    # Any other refusal of this identifier: a person must look (bad data, a code).
    REJECTED = "rejected"
    # Transient failures used every attempt of a run; the next run retries.
    FAILED = "failed"
    # Never finished: no outcome recorded yet (not stored as an event).
    PENDING = "pending"


FINAL: frozenset[Outcome] = frozenset({Outcome.ERASED, Outcome.NOT_FOUND, Outcome.REJECTED})

_SCHEMA = """
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,  -- 1, 2, 3, ... without gaps
    at          TEXT NOT NULL,        -- UTC, ISO 8601 with microseconds
    run         INTEGER NOT NULL,     -- the run's number; 0 for 'created'
    kind        TEXT NOT NULL,        -- see erasure.ledger.Kind
    key         TEXT,                 -- the identifier's key (never the identifier)
    request_id  TEXT,                 -- the DSR ticket, when the input has one
    db_id       INTEGER,
    matching    TEXT,                 -- email | phone | profile_id | custom
    resource_id INTEGER,
    field_name  TEXT,                 -- custom matching only
    received_at TEXT,                 -- when the request was received (for the deadline)
    attempt     INTEGER,              -- which request of this run for this key (1, 2, ...)
    outcome     TEXT,                 -- erased | not_found | rejected | failed
    in_doubt    INTEGER,              -- 1: an earlier request may have reached the service
    profile_id  TEXT,                 -- data.profile_id from the answer
    error_code  INTEGER,              -- Altcraft's error field
    error_text  TEXT,                 -- error_text, any identifier in it replaced by its key
    http_status INTEGER,
    detail      TEXT,                 -- JSON: run settings, input hash, counts, exit code
    link        TEXT NOT NULL         -- HMAC chain link
) STRICT;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE VIEW runs AS
    SELECT s.run AS run,
           s.at AS started_at,
           f.at AS finished_at,
           json_extract(f.detail, '$.exit_code') AS exit_code,
           json_extract(s.detail, '$.input.sha256') AS input_sha256,
           json_extract(s.detail, '$.input.rows') AS input_rows,
           s.detail AS started,
           f.detail AS finished
    FROM events AS s
    LEFT JOIN events AS f ON f.run = s.run AND f.kind = 'run_finished'
    WHERE s.kind = 'run_started';
"""


class Event(NamedTuple):
    """One ledger event; ``seq``, ``at`` and ``link`` are set when appended.

    A named tuple rather than a frozen dataclass: three are made per
    identifier on the hot path, and a tuple is what the chain and the
    INSERT need anyway.
    """

    kind: Kind
    run: int
    key: str | None = None
    request_id: str | None = None
    db_id: int | None = None
    matching: Matching | None = None
    resource_id: int | None = None
    field_name: str | None = None
    received_at: str | None = None
    attempt: int | None = None
    outcome: Outcome | None = None
    in_doubt: int | None = None
    profile_id: str | None = None
    error_code: int | None = None
    error_text: str | None = None
    http_status: int | None = None
    detail: str | None = None


_EVENT_FIELDS = Event._fields
_COLUMNS = ("seq", "at", *_EVENT_FIELDS, "link")
_INSERT = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def canonical(seq: int, at: str, values: Sequence[Any]) -> bytes:
    """The bytes a chain link covers: the event's position, time and content.

    Compact JSON, UTF-8, nothing escaped but what JSON requires: the bytes
    of ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``,
    which ``tests/test_ledger.py`` holds orjson to. orjson makes them in a
    twentieth of the time, and three events are chained per delete.
    """
    return orjson.dumps([seq, at, *values])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _meta_values(keyer: Keyer) -> dict[str, str]:
    return {
        "schema": SCHEMA_VERSION,
        "normalisation": NORMALISATION_VERSION,
        "derivation": keyer.derivation,  # an older ledger keeps its own
        "key_fingerprint": keyer.fingerprint,
    }


def _is_write_failure(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        code
        in (
            sqlite3.SQLITE_FULL,
            sqlite3.SQLITE_IOERR,
            sqlite3.SQLITE_CANTOPEN,
            sqlite3.SQLITE_READONLY,
        )
        or "disk" in str(exc).lower()
    )


def check_meta(found: dict[str, str], keyer: Keyer, path: Path) -> None:
    """Refuse a ledger written with another key or other derivation rules."""
    expected = _meta_values(keyer)
    if found.get("schema") != expected["schema"]:
        raise LedgerMismatch(
            f"ledger {path} has schema {found.get('schema')!r}; this erasure writes "
            f"{expected['schema']!r}"
        )
    for name in ("normalisation", "derivation"):
        if found.get(name) != expected[name]:
            raise LedgerMismatch(
                f"ledger {path} was written with {name} rules {found.get(name)!r}, "
                f"this erasure uses {expected[name]!r}: its keys would not match; "
                "use a new ledger or the erasure version that wrote it"
            )
    if found.get("key_fingerprint") != expected["key_fingerprint"]:
        raise LedgerMismatch(
            f"ledger {path} was written with another ledger key (fingerprint "
            f"{found.get('key_fingerprint')}, this key's is {expected['key_fingerprint']}); "
            "set the key the ledger was created with"
        )


class Ledger:
    """The writer's handle: holds the lock, appends chained events in batches.

    Not thread-safe; the runner gives it to one task (which calls it from a
    worker thread), so events are never interleaved.
    """

    def __init__(
        self,
        path: Path,
        keyer: Keyer,
        *,
        max_pages: int | None = None,
        perms: Perms = OWNER_ONLY,
    ) -> None:
        """Open (or create) the ledger at ``path`` and take its lock.

        ``perms`` is what a new ledger and lock file are created with; SQLite
        gives the ``-wal`` and ``-shm`` files the ledger file's mode.
        """
        keyer.require(Role.CHAIN, f"writing the ledger {path}")
        self.path = path
        self._keyer = keyer
        self._perms = perms
        path.parent.mkdir(parents=True, exist_ok=True)
        # filelock sets its lock file's mode itself (fchmod past the umask):
        # give it ours, and a group only through the file made here first.
        lock_path = Path(str(path) + ".lock")
        try:
            precreate(lock_path, perms)
        except OSError as exc:
            raise LedgerWriteError(f"ledger lock {lock_path} cannot be created: {exc}") from None
        self._lock = filelock.FileLock(str(lock_path), mode=perms.mode, thread_local=False)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise LedgerBusy(
                f"another run holds the ledger {path} (lock {path}.lock); "
                "try again when it has finished"
            ) from None
        try:
            self._db = self._connect(max_pages)
            self.head_seq, self.head_link = self._head()
        except BaseException:
            self._lock.release()
            raise

    def _connect(self, max_pages: int | None) -> sqlite3.Connection:
        try:
            # created with its mode before SQLite opens it: SQLite keeps it,
            # and copies it to the -wal and -shm files
            precreate(self.path, self._perms)
        except OSError as exc:
            raise LedgerWriteError(f"ledger {self.path} cannot be created: {exc}") from None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if max_pages is not None:
                db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone()
            if not exists:
                self._create(db)
            else:
                found = dict(db.execute("SELECT name, value FROM meta").fetchall())
                check_meta(found, self._keyer, self.path)
        except sqlite3.Error as exc:
            if _is_write_failure(exc):
                raise LedgerWriteError(f"ledger {self.path} cannot be written: {exc}") from None
            raise LedgerMismatch(f"ledger {self.path} is not an erasure ledger: {exc}") from None
        return db

    def _create(self, db: sqlite3.Connection) -> None:
        meta = _meta_values(self._keyer)
        # one transaction: a crash leaves no half-made ledger
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        event = Event(Kind.CREATED, 0, detail=json.dumps(meta, sort_keys=True))
        self._insert(db, [event], 0, GENESIS)
        db.execute("COMMIT")

    def _head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, link FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def _insert(
        self, db: sqlite3.Connection, events: Iterable[Event], seq: int, link: str
    ) -> tuple[int, str]:
        rows = []
        at = now_iso()
        chain = self._keyer.chain
        for event in events:
            seq += 1
            values = event
            link = chain(link, canonical(seq, at, values))
            rows.append((seq, at, *values, link))
        db.executemany(_INSERT, rows)
        return seq, link

    def append(self, events: Sequence[Event]) -> None:
        """Chain and commit ``events`` in one transaction (durable on return).

        Raises :class:`LedgerWriteError` when the disk is full or fails; what
        was committed before stays intact.
        """
        if not events:
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            seq, link = self._insert(db, events, self.head_seq, self.head_link)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise LedgerWriteError(f"ledger {self.path} cannot be written: {exc}") from None
        self.head_seq, self.head_link = seq, link

    def next_run(self) -> int:
        # runs only grow, so the last event's run is the largest: no full scan
        row = self._db.execute("SELECT run FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return int(row[0] or 0) + 1

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._lock.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- reading


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open the ledger for reading only; safe while a run writes."""
    if not path.exists():
        raise FileMissing(f"ledger {path} does not exist (no run has written it yet)")
    try:
        # a reader may be handed to one worker thread (never used by two at once)
        db = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise LedgerMismatch(f"ledger {path} is not an erasure ledger: {exc}") from None
    return db


def read_meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT name, value FROM meta").fetchall())


def frame(
    db: sqlite3.Connection, sql: str, schema: dict[str, Any], params: Sequence[Any] = ()
) -> pl.DataFrame:
    """A query's rows as a polars frame with a fixed schema (empty-safe)."""
    rows = db.execute(sql, params).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


FINISHED_SQL = """
    SELECT request_id, key, outcome FROM events
    WHERE kind = 'outcome' AND outcome IN ('erased', 'not_found', 'rejected')
    ORDER BY seq
"""
REJECTED_LAST_SQL = """
    SELECT e.request_id, e.key FROM events e
    JOIN (SELECT request_id, key, max(seq) AS seq FROM events WHERE kind = 'outcome'
          GROUP BY request_id, key) last ON last.seq = e.seq
    WHERE e.outcome = 'rejected'
"""
# A key is in doubt when a request for it may have reached the service and no
# outcome has been recorded since: a 'sent' with neither an 'attempt', a
# 'withdrawn' nor an 'outcome' after it, an attempt that got no answer, or a
# non-final outcome that was itself in doubt. One pass over the events finds
# the few candidates (a 'sent' after the last outcome, or a failed outcome in
# doubt); their own events then decide.
_DOUBT_CANDIDATES_SQL = """
    SELECT key FROM events WHERE kind IN ('sent', 'outcome') AND key IS NOT NULL
    GROUP BY key
    HAVING max(CASE WHEN kind = 'sent' THEN seq END)
           > coalesce(max(CASE WHEN kind = 'outcome' THEN seq END), 0)
    UNION
    SELECT key FROM events WHERE kind = 'outcome' AND outcome = 'failed' AND in_doubt = 1
"""
_DOUBT_EVENTS_SQL = """
    SELECT key, kind, in_doubt, outcome FROM events
    WHERE kind IN ('sent', 'withdrawn', 'attempt', 'outcome')
      AND key IN (SELECT value FROM json_each(?))
    ORDER BY seq
"""


def finished_pairs(db: sqlite3.Connection, *, retry_rejected: bool = False) -> pl.DataFrame:
    """(request_id, key, outcome) of pairs with a final outcome, oldest first.

    A pair listed here is never sent again for that request. With
    ``retry_rejected``, pairs whose last outcome is ``rejected`` are left
    out, so that a run sends them again.
    """
    schema = {"request_id": pl.String, "key": pl.String, "outcome": pl.String}
    done = frame(db, FINISHED_SQL, schema)
    if retry_rejected:
        rejected = frame(db, REJECTED_LAST_SQL, {"request_id": pl.String, "key": pl.String})
        done = done.join(rejected, on=["request_id", "key"], how="anti", nulls_equal=True)
    return done


def doubtful_keys(db: sqlite3.Connection) -> set[str]:
    """Keys whose last request may have reached the service without an answer.

    The candidates' histories are read in one more pass over the events
    rather than by key: the ledger keeps no index on keys, whose random
    order made every insert about 8 µs dearer (three per delete).
    """
    candidates = [key for (key,) in db.execute(_DOUBT_CANDIDATES_SQL)]
    if not candidates:
        return set()
    histories: dict[str, list[tuple[str, int | None, str | None]]] = {}
    for key, kind, flagged, outcome in db.execute(_DOUBT_EVENTS_SQL, (json.dumps(candidates),)):
        histories.setdefault(key, []).append((kind, flagged, outcome))
    return {key for key, events in histories.items() if in_doubt(events)}


def in_doubt(events: Sequence[tuple[str, int | None, str | None]]) -> bool:
    """Whether one key's history (kind, in_doubt, outcome), oldest first, ends in doubt."""
    doubt = unanswered = False
    for kind, flagged, outcome in events:
        if kind == Kind.OUTCOME:
            doubt = outcome == Outcome.FAILED and flagged == 1
            unanswered = False
        elif kind == Kind.SENT:
            unanswered = True
        else:  # an attempt's answer (or its failure), or a withdrawn intent
            unanswered = False
            doubt = doubt or (kind == Kind.ATTEMPT and flagged == 1)
    return doubt or unanswered


# ---------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What :func:`verify` found."""

    ok: bool
    events: int  # events checked
    head_seq: int
    head_link: str
    problem: str | None = None  # names the first broken event


def verify(path: Path, keyer: Keyer) -> ChainCheck:
    """Walk the chain; name the first event changed, removed, inserted or moved."""
    with closing(open_readonly(path)) as db:
        meta = read_meta(db)
        check_meta(meta, keyer, path)
        link = GENESIS
        expected_seq = 0
        cursor = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM events ORDER BY seq")
        chain = keyer.chain
        for row in _rows(cursor):
            expected_seq += 1
            seq, at, *values, stored = row
            if seq != expected_seq:
                problem = (
                    f"event {expected_seq} is missing (the next one is {seq})"
                    if seq > expected_seq
                    else f"event {seq} appears twice"
                )
                return ChainCheck(False, expected_seq - 1, expected_seq - 1, link, problem)
            link = chain(link, canonical(seq, at, values))
            if link != stored:
                return ChainCheck(
                    False,
                    seq - 1,
                    seq - 1,
                    stored,
                    f"event {seq} ({values[0]}, run {values[1]}) does not match its chain "
                    "link: it or an earlier event was changed, inserted or moved",
                )
            if seq == 1:
                created = json.loads(values[_EVENT_FIELDS.index("detail")] or "{}")
                if values[0] != Kind.CREATED or created != meta:
                    return ChainCheck(
                        False, 0, 0, link, "the meta table does not match event 1 (created)"
                    )
        return ChainCheck(True, expected_seq, expected_seq, link)


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    while batch := cursor.fetchmany(10_000):
        yield from batch


def max_pages_from_env() -> int | None:
    """``ERASURE_LEDGER_MAX_PAGES`` caps the ledger file's size (pages of 4 KiB).

    Meant for operators who want a hard bound, and for the disk-full test.
    """
    value = os.environ.get("ERASURE_LEDGER_MAX_PAGES")
    return int(value) if value else None
