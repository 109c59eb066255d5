"""Decisions waiting for the ledger's writer: holds and cancellations given during a run.

The ledger has one writer at a time (its lock), and a run may hold it for
hours. A legal hold cannot wait that long, and must not write into the
run's chain behind its back (two writers would fork the chain). So a
decision command that finds the ledger locked queues its events in this
companion file, ``LEDGER.decisions`` (SQLite, WAL, the ledger's
permissions; it holds keys, request ids and words, never an identifier).
The writer that holds the lock appends them to the chain as events of its
own: the run polls the queue every few seconds (erasure.run.runner), and
every writer drains it when it opens the ledger (erasure.ledger.store), so
that a decision queued just as a run ended is appended by the next writer.

Each queued event carries its decision's id in its detail: an event
appended whose queue row was not yet deleted (a crash in between) is
skipped the next time, never appended twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.errors import LedgerWriteError
from erasure.files import OWNER_ONLY, Perms, precreate
from erasure.ledger.events import Event, Kind

if TYPE_CHECKING:
    from erasure.ledger.store import Ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    n          INTEGER PRIMARY KEY,  -- the order they were queued in
    id         TEXT NOT NULL,        -- the decision's id (also in the event's detail)
    kind       TEXT NOT NULL,        -- hold | release | cancel | reopen
    request_id TEXT,
    key        TEXT,
    detail     TEXT NOT NULL
) STRICT
"""
BUSY_TIMEOUT_S = 10.0  # the queue's writer and its reader wait this long for each other


def path_of(ledger: Path) -> Path:
    """The queue beside ``ledger``: ``LEDGER.decisions``."""
    return Path(str(ledger) + ".decisions")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)
    return db


def put(ledger: Path, events: Sequence[Event], perms: Perms = OWNER_ONLY) -> Path:
    """Queue ``events`` (one transaction) for the writer holding ``ledger``; the queue's path."""
    path = path_of(ledger)
    try:
        precreate(path, perms)
        with closing(_connect(path)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO queue (id, kind, request_id, key, detail) VALUES (?, ?, ?, ?, ?)",
                [(_id(e), e.kind.value, e.request_id, e.key, e.detail or "{}") for e in events],
            )
            db.execute("COMMIT")
    except (OSError, sqlite3.Error) as exc:
        raise LedgerWriteError(f"the decisions queue {path} cannot be written: {exc}") from None
    return path


def peek(ledger: Path) -> list[tuple[int, Event]]:
    """What waits in the queue, oldest first, as (queue number, event); nothing when none.

    Read-only: the commands that list decisions show the queued ones too.
    """
    path = path_of(ledger)
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        with closing(
            sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            rows = db.execute(
                "SELECT n, kind, request_id, key, detail FROM queue ORDER BY n"
            ).fetchall()
    except sqlite3.Error:
        return []  # a queue being created: nothing in it yet
    return [
        (n, Event(Kind(kind), 0, key=key, request_id=rid, detail=d))
        for n, kind, rid, key, d in rows
    ]


def take(ledger: Path, db: sqlite3.Connection) -> tuple[list[Event], int]:
    """The queued events the ledger ``db`` does not hold yet, and the last queue number read.

    ``db`` is the ledger (read by the writer, or read-only): a decision whose
    id it already holds is not returned again.
    """
    queued = peek(ledger)
    if not queued:
        return [], 0
    ids = {_id(e) for _, e in queued}
    marks = ",".join("?" * len(ids))
    try:
        known = {
            row[0]
            for row in db.execute(
                f"SELECT decision_id FROM decision_state WHERE decision_id IN ({marks})",
                sorted(ids),
            )
        }
    except sqlite3.OperationalError:
        known = set()  # no decision_state yet: no decision appended yet
    return [e for _, e in queued if _id(e) not in known], queued[-1][0]


def forget(ledger: Path, upto: int) -> None:
    """Delete the queue's rows up to number ``upto`` (appended to the ledger by now)."""
    if upto <= 0:
        return
    path = path_of(ledger)
    try:
        with closing(_connect(path)) as db:
            db.execute("DELETE FROM queue WHERE n <= ?", (upto,))
    except sqlite3.Error as exc:
        # harmless: the events are in the ledger, and their ids keep them from a second append
        raise LedgerWriteError(f"the decisions queue {path} cannot be emptied: {exc}") from None


def drain(ledger: Ledger) -> int:
    """Append what waits in ``ledger``'s queue (the caller holds the lock); how many events."""
    events, upto = take(ledger.path, ledger.connection)
    if events:
        ledger.append(events)
    forget(ledger.path, upto)
    return len(events)


def _id(event: Event) -> str:
    try:
        return str(json.loads(event.detail or "{}").get("id") or "")
    except ValueError:
        return ""
