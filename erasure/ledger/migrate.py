"""Older ledgers: build the derived state once, under the lock, never rewriting an event.

A ledger written before the derived state existed has only ``meta`` and
``events``. When ``run`` opens one (holding the lock), :func:`migrate`
replays every event into a scratch file through the state triggers (a
progress bar on stderr while it does), computes the plain chain beside
them, and copies the result into the ledger in one transaction: the
events table is read, never written. A crash part-way leaves the ledger
as it was; the next run starts again.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from tqdm import tqdm

from erasure.errors import LedgerWriteError
from erasure.ledger import state
from erasure.ledger.events import COLUMNS, canonical
from erasure.plainchain import PLAIN_GENESIS, plain_link

if TYPE_CHECKING:
    from erasure.ledger.store import Ledger


def migrate(ledger: Ledger, *, progress: bool = False) -> None:
    """Give ``ledger`` (opened for writing, locked) this release's derived state."""
    db = ledger.connection
    (total,) = db.execute("SELECT count(*) FROM events").fetchone()
    bar = tqdm(
        total=total, unit="ev", desc="migrating the ledger", disable=not progress, leave=False
    )

    def fill(replay: state.Replay) -> None:
        plain = PLAIN_GENESIS
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
        replay, scratch = state.with_scratch(ledger.path.parent, None, fill)
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
            raise LedgerWriteError(f"ledger {ledger.path} cannot be migrated: {exc}") from None
        finally:
            db.execute("DETACH DATABASE scratch")
    finally:
        replay.close()
        del scratch
    ledger.head_seq, ledger.head_link, ledger.plain_head = ledger._head()
