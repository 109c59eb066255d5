"""The ledger's writer: one SQLite file, append-only, each event chained twice.

Tables (readable with ``sqlite3``)::

    meta(name, value)     how keys are derived: schema, normalisation and
                          derivation versions, the ledger key's fingerprint
    events(seq, ...)      everything that happened, in order; never updated
    runs                  a view: one row per run, from its start and end events
    plain_links, ...      derived state (erasure.ledger.state), kept in the
                          same transaction as the events

Each event's ``link`` is HMAC(chain key, previous link, canonical content):
no one without the key can change, remove, insert or reorder an event and
recompute the chain, and ``verify`` names the first event that breaks it.
Beside it runs the plain SHA-256 chain (``plain_links``), which anyone can
recompute (receipts cite it). UPDATE and DELETE are refused by triggers.

Only one process writes at a time (a lock file beside the ledger, released
by the OS when its holder dies); readers open the file read-only and may
read while a run writes. A ledger written before the derived state existed
is migrated when a run opens it (erasure.ledger.migrate): the state is
built once from the events, which are never rewritten.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import filelock

from erasure.errors import LedgerBusy, LedgerMismatch, LedgerWriteError
from erasure.files import OWNER_ONLY, Perms, precreate
from erasure.keys import NORMALISATION_VERSION, NORMALISATIONS, Keyer, Role
from erasure.ledger import safety, state
from erasure.ledger.details import CreatedDetail, encode
from erasure.ledger.events import (
    CANONICAL_VERSION,
    COLUMNS,
    GENESIS,
    SCHEMA_VERSION,
    Canonical,
    Event,
    Kind,
    canonical_of,
    now_iso,
)
from erasure.ledger.migrate import migrate
from erasure.ledger.sqlscript import statements
from erasure.plainchain import PLAIN_GENESIS, plain_link

EXTENDED_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_extended ON events(kind) WHERE kind = 'extended'"
)
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
-- the few extension events (erasure extend), read by every report: found by index
CREATE INDEX IF NOT EXISTS events_extended ON events(kind) WHERE kind = 'extended';
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


_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_INSERT_PLAIN = "INSERT INTO plain_links (seq, link) VALUES (?, ?)"


def meta_values(keyer: Keyer) -> dict[str, str]:
    """A new ledger's meta: what :func:`check_meta` compares, and its canonical encoding."""
    return {
        "schema": SCHEMA_VERSION,
        "normalisation": NORMALISATION_VERSION,
        "derivation": keyer.derivation,  # an older ledger keeps its own
        "key_fingerprint": keyer.fingerprint,
        "canonical": CANONICAL_VERSION,  # absent in older ledgers: version 1
    }


def is_write_failure(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not write (disk full, I/O error, read-only): by its result code.

    The extended codes (``SQLITE_IOERR_WRITE`` ...) carry the primary one in
    their low byte.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _WRITE_FAILURES


_WRITE_FAILURES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY}
)


def _reads(found: str | None, ours: str) -> bool:
    """Whether normalisation ``ours`` computes every key a ledger of ``found`` holds."""
    known = NORMALISATIONS
    return found in known and ours in known and known.index(found) <= known.index(ours)


def check_meta(found: dict[str, str], keyer: Keyer, path: Path) -> None:
    """Refuse a ledger written with another key, other derivation rules, or a newer encoding."""
    canonical_of(found, f"ledger {path}")
    expected = meta_values(keyer)
    if found.get("schema") != expected["schema"]:
        raise LedgerMismatch(
            f"ledger {path} has schema {found.get('schema')!r}; this erasure writes "
            f"{expected['schema']!r}"
        )
    for name in ("normalisation", "derivation"):
        if name == "normalisation" and _reads(found.get(name), expected[name]):
            continue  # an earlier normalisation whose keys this one computes alike
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
        progress: bool = False,
    ) -> None:
        """Open (or create) the ledger at ``path`` and take its lock.

        ``perms`` is what a new ledger and lock file are created with; SQLite
        gives the ``-wal`` and ``-shm`` files the ledger file's mode. A
        ledger without this release's derived state is migrated here, once,
        under the lock (``progress``: draw a bar on stderr while it is).
        """
        keyer.require(Role.CHAIN, f"writing the ledger {path}")
        self.path = path
        self._keyer = keyer
        self._perms = perms
        safety.check_writable(path)  # 78 before anything is made or opened
        try:
            safety.make_folders(path.parent, perms)
        except OSError as exc:
            raise LedgerWriteError(
                f"ledger folder {path.parent} cannot be created: {exc}"
            ) from None
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
            self.head_seq, self.head_link, self.plain_head = self._head()
            if not state.has_state(self._db):
                migrate(self._db, path, progress=progress)
                # the plain head is known now (plain_links); the keyed one is unchanged
                self.head_seq, self.head_link, self.plain_head = self._head()
            self._decisions()
        except BaseException:
            self._lock.release()
            raise

    def _decisions(self) -> None:
        """Append the decisions queued while another writer held the lock, and their outcomes.

        Also ends the holds whose ``until`` has passed (erasure.decisions.sync).
        """
        from erasure.decisions import sync
        from erasure.ledger.pending import drain

        drain(self)
        self.append(sync(self._db))

    def _connect(self, max_pages: int | None) -> sqlite3.Connection:
        try:
            # created with its mode before SQLite opens it: SQLite keeps it,
            # and copies it to the -wal and -shm files
            precreate(self.path, self._perms)
        except OSError as exc:
            raise LedgerWriteError(f"ledger {self.path} cannot be created: {exc}") from None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                safety.refuse_foreign(db, self.path)  # before WAL mode rewrites its header
            except BaseException:
                db.close()
                raise
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
                self._canonical = canonical_of(found)
                # a ledger of an earlier release gains the index once (one scan)
                db.execute(EXTENDED_INDEX)
        except sqlite3.Error as exc:
            if is_write_failure(exc):
                raise LedgerWriteError(f"ledger {self.path} cannot be written: {exc}") from None
            raise LedgerMismatch(f"ledger {self.path} is not an erasure ledger: {exc}") from None
        return db

    def _create(self, db: sqlite3.Connection) -> None:
        meta = meta_values(self._keyer)
        # one transaction: a crash leaves no half-made ledger
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
        state.create(db)
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self._canonical = canonical_of(meta)
        event = Event(Kind.CREATED, 0, detail=encode(CreatedDetail(**meta)))
        self._insert(db, [event], 0, GENESIS, PLAIN_GENESIS)
        db.execute("COMMIT")

    @property
    def keyer(self) -> Keyer:
        return self._keyer

    def _head(self) -> tuple[int, str, str]:
        """The last event's seq, keyed link and plain link (the plain one when kept)."""
        db = self._db
        row = db.execute("SELECT seq, link FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if not row:
            return 0, GENESIS, PLAIN_GENESIS
        plain = None
        if state.has_state(db):
            found = db.execute("SELECT link FROM plain_links WHERE seq = ?", (row[0],)).fetchone()
            plain = found[0] if found else None
        return int(row[0]), str(row[1]), plain or ""

    def _insert(
        self, db: sqlite3.Connection, events: Iterable[Event], seq: int, link: str, plain: str
    ) -> tuple[int, str, str]:
        return insert(db, self._keyer, events, seq, link, plain, canonical=self._canonical)

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
            seq, link, plain = self._insert(
                db, events, self.head_seq, self.head_link, self.plain_head
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise LedgerWriteError(f"ledger {self.path} cannot be written: {exc}") from None
        self.head_seq, self.head_link, self.plain_head = seq, link, plain

    def next_run(self) -> int:
        # runs only grow, so the last event's run is the largest: no full scan
        # (an archive record, run 0, may be last: run_state remembers the runs)
        row = self._db.execute("SELECT run FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        (known,) = self._db.execute("SELECT max(run) FROM run_state").fetchone()
        return max(int(row[0] or 0) if row else 0, int(known or 0)) + 1

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def close(self) -> None:
        try:
            safety.leave_for_readers(self._db, self._perms)  # a group's members read it after
            self._db.close()
        finally:
            self._lock.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def insert(
    db: sqlite3.Connection,
    keyer: Keyer,
    events: Iterable[Event],
    seq: int,
    link: str,
    plain: str,
    *,
    canonical: Canonical,
) -> tuple[int, str, str]:
    """Chain ``events`` after (seq, link, plain) and insert them; the new head.

    Inside the caller's transaction. The events go first: their triggers
    fold them into the derived state; then their plain links. ``canonical``
    is the ledger's encoding (erasure.ledger.events.canonical_of its meta).
    """
    rows = []
    links = []
    at = now_iso()
    chain = keyer.chain
    for event in events:
        seq += 1
        data = canonical(seq, at, event)
        link = chain(link, data)
        plain = plain_link(plain, data)
        rows.append((seq, at, *event, link))
        links.append((seq, plain))
    db.executemany(_INSERT, rows)
    db.executemany(_INSERT_PLAIN, links)
    return seq, link, plain


def create_schema(db: sqlite3.Connection) -> None:
    """The events' schema (meta, events, their triggers, the runs view), in a transaction."""
    for statement in statements(_SCHEMA):
        db.execute(statement)


def max_pages_from_env() -> int | None:
    """``ERASURE_LEDGER_MAX_PAGES`` caps the ledger file's size (pages of 4 KiB).

    Meant for operators who want a hard bound, and for the disk-full test.
    """
    value = os.environ.get("ERASURE_LEDGER_MAX_PAGES")
    return int(value) if value else None
