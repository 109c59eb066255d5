"""Older ledgers: build the derived state once, under the lock, never rewriting an event.

A ledger written before the derived state existed has only ``meta`` and
``events``. When ``run`` (or ``erasure migrate``, :mod:`erasure.migrating`) opens one
(holding the lock), :func:`migrate`
replays every event into a scratch file through the state triggers (a
progress bar on stderr while it does), computes the plain chain beside
them, and copies the result into the ledger in one transaction: the
events table is read, never written. A crash part-way leaves the ledger
as it was; the next run starts again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from erasure.errors import LedgerWriteError
from erasure.ledger import state
from erasure.ledger.details import ArchivedDetail, loads
from erasure.ledger.events import COLUMNS, canonical_of
from erasure.ledger.replay import Replay, with_scratch
from erasure.plainchain import PLAIN_GENESIS, plain_link


def migrate(db: sqlite3.Connection, path: Path, *, progress: bool = False) -> None:
    """Give the ledger at ``path``, open on ``db`` for writing under its lock, this
    release's derived state. The events are read, never written: the chain's head stays."""
    from tqdm import tqdm  # loaded by the rare migration only, not by every ledger's opening

    (total,) = db.execute("SELECT count(*) FROM events").fetchone()
    bar = tqdm(
        total=total, unit="ev", desc="migrating the ledger", disable=not progress, leave=False
    )

    # A ledger that starts after an archive starts from the state the archived
    # events left (its base_ tables) and from the plain link the archive ends with.
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0] or 1
    start_plain = PLAIN_GENESIS if first == 1 else _archived_plain_head(db, first)
    canonical = canonical_of(dict(db.execute("SELECT name, value FROM meta").fetchall()), path)

    def fill(replay: Replay) -> None:
        plain = start_plain
        cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY seq")
        while rows := cursor.fetchmany(10_000):
            links = []
            for seq, at, *values, _link in rows:
                plain = plain_link(plain, canonical(seq, at, values))
                links.append((seq, plain))
            replay.add(rows)
            replay.add_plain(links)
            bar.update(len(rows))

    try:
        replay, scratch = with_scratch(path.parent, db if first > 1 else None, fill)
    finally:
        bar.close()
    try:
        db.execute("ATTACH DATABASE ? AS scratch", (str(replay.path),))
        try:
            db.execute("BEGIN IMMEDIATE")
            state.create(db, with_triggers=False)
            db.execute("DELETE FROM totals")
            for table in (*state.TABLES, "plain_links"):
                db.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.{table}")
            state.create_triggers(db)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise LedgerWriteError(f"ledger {path} cannot be migrated: {exc}") from None
        finally:
            db.execute("DETACH DATABASE scratch")
    finally:
        replay.close()
        del scratch


def _archived_plain_head(db: sqlite3.Connection, first: int) -> str:
    """The plain link of event ``first - 1``, as the archive record citing it says."""
    for (detail,) in db.execute(
        "SELECT detail FROM events WHERE kind = 'archived' ORDER BY seq DESC"
    ):
        archive = loads(ArchivedDetail, detail).archive
        if archive.head_seq == first - 1 and archive.plain_head:
            return archive.plain_head
    raise LedgerWriteError(
        f"the ledger starts at event {first} and no archive record gives the plain link "
        "before it; run `erasure verify` on it"
    )
