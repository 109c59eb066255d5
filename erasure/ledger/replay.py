"""Replaying events into a scratch copy of the derived state, and comparing it with the kept one.

:class:`Replay` feeds events, oldest first, through the state triggers of
:mod:`erasure.ledger.state` into a scratch file; :func:`with_scratch` makes
one, :func:`compare` and :func:`state_hash` judge the result. ``verify``,
the migration and ``archive`` use them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from erasure.ledger.events import COLUMNS
from erasure.ledger.state import (
    ORDER,
    STATE_VERSION,
    TABLES,
    TOTALS,
    _exists,
    create,
    create_triggers,
    why,
)

# the scratch database's events table: the ledger's columns, no chain checks
_SCRATCH_EVENTS = (
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, at TEXT, kind TEXT, run INTEGER, key TEXT, "
    "request_id TEXT, db_id INTEGER, matching TEXT, resource_id INTEGER, field_name TEXT, "
    "received_at TEXT, attempt INTEGER, outcome TEXT, in_doubt INTEGER, profile_id TEXT, "
    "error_code INTEGER, error_text TEXT, http_status INTEGER, detail TEXT, link TEXT)"
)
_SCRATCH_INSERT = f"INSERT INTO events VALUES ({', '.join('?' * len(COLUMNS))})"


class Replay:
    """A scratch SQLite file into which events are replayed through the state triggers.

    Feed it the events, oldest first, with :meth:`add` (rows in
    :data:`~erasure.ledger.events.COLUMNS` order, ``link`` included) and
    their plain links with :meth:`add_plain`; it keeps only the derived
    tables (the replayed events are dropped batch by batch, so the file
    stays the size of the state).
    """

    def __init__(self, path: Path, base: sqlite3.Connection | None = None) -> None:
        """Start from the empty state, or from the ``base_<table>`` copies in ``base``."""
        self.path = path
        db = sqlite3.connect(path, isolation_level=None)
        # a scratch file: nothing to keep if the machine stops
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-65536")  # KiB: 64 MiB of pages, then the disk
        db.execute("BEGIN")
        db.execute(_SCRATCH_EVENTS)
        create(db, with_triggers=False)
        if base is not None:
            db.execute("DELETE FROM state_meta")
            db.execute("INSERT INTO state_meta VALUES ('version', ?)", (STATE_VERSION,))
            load_base(base, "main", db)
        create_triggers(db)
        self.db = db
        self.last = 0

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        self.db.executemany(_SCRATCH_INSERT, rows)
        self.last = int(rows[-1][0])
        # keep the newest event: the guard triggers compare with max(seq)
        self.db.execute("DELETE FROM events WHERE seq < ?", (self.last,))

    def add_all(self, source: sqlite3.Connection, low: int, high: int) -> None:
        """Replay ``source``'s events with low < seq <= high."""
        cursor = source.execute(
            f"SELECT {', '.join(COLUMNS)} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
            (low, high),
        )
        while rows := cursor.fetchmany(10_000):
            self.add(rows)

    def add_plain(self, rows: Iterable[tuple[int, str]]) -> None:
        self.db.executemany("INSERT INTO plain_links VALUES (?, ?)", rows)

    def finish(self) -> sqlite3.Connection:
        self.db.execute("COMMIT")
        return self.db

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)


def load_base(source: sqlite3.Connection, schema: str, target: sqlite3.Connection) -> None:
    """Start ``target``'s derived tables (empty, no triggers) from the archived state.

    The ``base_<table>`` copies in ``source`` (its schema ``schema``) are
    the state the archived events left, written by whichever release
    archived them and sealed by the archive record's hash: they are never
    changed. A later release's tables may have more columns (they take
    their defaults: no event of the older release could have set them) and
    more tables (an older archive has no ``base_decision_state``); its
    request totals follow its own rule (erasure.partition), so they are
    counted again from the request rows. Kept pairs, keys and requests stay
    final, whichever release archived them.
    """
    target.execute("DELETE FROM main.totals")
    for table in TABLES:
        name = f"base_{table}"
        found = source.execute(
            f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        if found is None:
            continue
        have = [r[1] for r in source.execute(f"PRAGMA {schema}.table_info({name})")]
        want = [r[1] for r in target.execute(f"PRAGMA main.table_info({table})")]
        common = [c for c in want if c in have]
        columns = ", ".join(common)
        cursor = source.execute(f"SELECT {columns} FROM {schema}.{name} ORDER BY {ORDER[table]}")
        marks = ", ".join("?" * len(common))
        insert = f"INSERT INTO main.{table} ({columns}) VALUES ({marks})"
        while batch := cursor.fetchmany(10_000):
            target.executemany(insert, batch)
    placeholders = ", ".join("?" * len(TOTALS))
    target.execute(f"DELETE FROM main.totals WHERE name NOT IN ({placeholders})", TOTALS)
    target.executemany(
        "INSERT INTO main.totals (name, value, last_seq) VALUES (?, 0, 0) ON CONFLICT DO NOTHING",
        [(n,) for n in TOTALS],
    )
    target.execute(
        "UPDATE main.totals SET value = coalesce((SELECT count(*) FROM main.request_state r "
        f"WHERE 'requests_' || {why('r')} = totals.name), 0) "
        "WHERE name LIKE 'requests~_%' ESCAPE '~'"
    )


def copy_rows(
    source: sqlite3.Connection, source_table: str, target: sqlite3.Connection, table: str
) -> None:
    """Copy every row of ``source_table`` into ``table`` (same columns), in key order."""
    cursor = source.execute(f"SELECT * FROM {source_table} ORDER BY {_order(table)}")
    width = len(cursor.description)
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * width)})"
    while batch := cursor.fetchmany(10_000):
        target.executemany(insert, batch)


def _order(table: str) -> str:
    """A derived table's key columns (also for its ``base_`` copy)."""
    return ORDER[table.removeprefix("base_")]


def compare(live: sqlite3.Connection, scratch: str) -> str | None:
    """The first derived table that disagrees with the replay in schema ``scratch``, or None.

    ``scratch`` is attached to ``live``; each table is compared both ways
    with EXCEPT, in SQLite, so that no row becomes a Python object.
    """
    for table in TABLES:
        for a, b, what in (
            (f"main.{table}", f"{scratch}.{table}", "a row the events do not explain"),
            (f"{scratch}.{table}", f"main.{table}", "a row the events imply is missing or differs"),
        ):
            row = live.execute(f"SELECT * FROM {a} EXCEPT SELECT * FROM {b} LIMIT 1").fetchone()
            if row is not None:
                return f"derived state {table} has {what} ({describe(table, row)})"
    return None


def describe(table: str, row: Sequence[Any]) -> str:
    """Where a derived row is, without any value beyond keys and numbers."""
    if table == "pair_state":
        return f"pair {row[0]}: request {row[1]!r}, key {row[2]}"
    return f"{ORDER[table].split(',')[0]} {row[0]!r}"


def rows_in_order(db: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    cursor = db.execute(f"SELECT * FROM {table} ORDER BY {_order(table)}")
    while batch := cursor.fetchmany(10_000):
        yield from batch


def state_hash(db: sqlite3.Connection, prefix: str = "") -> str:
    """SHA-256 of the derived tables' rows (``prefix`` + table), in key order, hex."""
    digest = hashlib.sha256()
    for table in TABLES:
        if not _exists(db, prefix + table):
            continue  # an archive made before this table existed
        digest.update(table.encode() + b"\n")
        for row in rows_in_order(db, prefix + table):
            digest.update(orjson.dumps(row) + b"\n")
    return digest.hexdigest()


def with_scratch(
    folder: Path | None,
    base: sqlite3.Connection | None,
    fill: Callable[[Replay], None],
    *,
    prefix: str = ".erasure-replay-",
) -> tuple[Replay, sqlite3.Connection]:
    """A :class:`Replay` in ``folder`` (None: the temporary folder), filled by ``fill``.

    The caller closes it (which deletes the file). The file is created
    owner-only: it holds the ledger's keys and request ids.
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".sqlite", dir=folder)
    os.close(fd)
    replay = Replay(Path(name), base)
    try:
        fill(replay)
        return replay, replay.finish()
    except BaseException:
        replay.close()
        raise
