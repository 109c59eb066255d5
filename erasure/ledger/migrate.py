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

import json
import sqlite3
from typing import TYPE_CHECKING

from tqdm import tqdm

from erasure.errors import LedgerWriteError
from erasure.ledger import state
from erasure.ledger.events import COLUMNS, canonical
from erasure.plainchain import PLAIN_GENESIS, plain_link

if TYPE_CHECKING:
    from erasure.job import Job
    from erasure.ledger.store import Ledger


def migrate_job(job: Job) -> bool:
    """``erasure migrate``: open the job's ledger for writing (which migrates it); whether
    it needed migrating. 66 when there is no ledger, 75 when a run holds it."""
    from contextlib import closing

    from erasure.errors import FileMissing
    from erasure.keys import Role
    from erasure.ledger.read import open_readonly
    from erasure.ledger.store import Ledger

    path = job.ledger.path
    if not path.exists():
        raise FileMissing(f"ledger {path} does not exist (no run has written it yet)")
    with closing(open_readonly(path)) as db:
        current = state.has_state(db)
    if current:
        return False
    keyer = job.keyer(Role.CHAIN, command="erasure migrate")
    with Ledger(path, keyer, perms=job.perms, progress=True):
        pass
    return True


def migrate(ledger: Ledger, *, progress: bool = False) -> None:
    """Give ``ledger`` (opened for writing, locked) this release's derived state."""
    db = ledger.connection
    (total,) = db.execute("SELECT count(*) FROM events").fetchone()
    bar = tqdm(
        total=total, unit="ev", desc="migrating the ledger", disable=not progress, leave=False
    )

    # A ledger that starts after an archive starts from the state the archived
    # events left (its base_ tables) and from the plain link the archive ends with.
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0] or 1
    start_plain = PLAIN_GENESIS if first == 1 else _archived_plain_head(db, first)

    def fill(replay: state.Replay) -> None:
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
        replay, scratch = state.with_scratch(ledger.path.parent, db if first > 1 else None, fill)
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


def _archived_plain_head(db: sqlite3.Connection, first: int) -> str:
    """The plain link of event ``first - 1``, as the archive record citing it says."""
    for (detail,) in db.execute(
        "SELECT detail FROM events WHERE kind = 'archived' ORDER BY seq DESC"
    ):
        archive = json.loads(detail).get("archive", {})
        if archive.get("head_seq") == first - 1 and archive.get("plain_head"):
            return str(archive["plain_head"])
    raise LedgerWriteError(
        f"the ledger starts at event {first} and no archive record gives the plain link "
        "before it; run `erasure verify` on it"
    )
