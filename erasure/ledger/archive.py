"""``erasure archive``: old runs' events into a sealed file, the chain unbroken.

The events of runs that ended before a date (always a prefix of the
ledger: runs follow one another) are copied, with their plain links and the
derived state they leave, into an archive file: its own SQLite file, its
tables sealed by triggers (no INSERT, UPDATE or DELETE), holding its heads.
Then a new live ledger is written beside the old one: ``base_<table>``
copies of that state (what the archived events leave), the remaining
events copied verbatim (same seq, time and links, so that every head and
receipt printed before stays valid), and one new event, chained after the
last: the ``archived`` record, citing the archive's first event, the link
before it, its head (keyed and plain) and the SHA-256 of the state it
leaves. The new ledger replaces the old one with one rename; nothing is
updated or deleted in place, and the archive is written, synced and
checked before anything is replaced.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from erasure.errors import LedgerWriteError, OutputError, UsageError
from erasure.files import Perms, precreate
from erasure.ledger import replay as replay_mod
from erasure.ledger import state
from erasure.ledger.details import ArchivedDetail, build, encode, loads
from erasure.ledger.events import COLUMNS, GENESIS, Event, Kind, canonical_of
from erasure.ledger.read import read_meta
from erasure.ledger.store import Ledger, create_schema, insert
from erasure.plainchain import PLAIN_GENESIS

_SEALED = "the archive is sealed"


@dataclass(frozen=True, slots=True)
class Archived:
    """What :func:`archive` did."""

    out: Path  # the archive file
    ledger: Path  # the live ledger, replaced
    first_seq: int  # the archive's first and last events
    head_seq: int
    head_link: str
    plain_head: str
    runs: str  # e.g. "1-30"
    kept: int  # events left in the live ledger (the archive record not counted)


def archive(ledger: Ledger, before: str, out: Path, perms: Perms) -> Archived:
    """Archive the runs of ``ledger`` (open, locked) that ended before ``before`` (a date)."""
    try:
        cutoff = date.fromisoformat(before)
    except ValueError:
        raise UsageError(f"--before {before!r} is not a date (YYYY-MM-DD)") from None
    if out.exists():
        raise OutputError(f"the archive {out} exists already: choose a new file")
    db = ledger.connection
    first = int(db.execute("SELECT min(seq) FROM events").fetchone()[0])
    _clear_leftovers(ledger.path, out)  # a killed archive's scratch files (the lock is ours)
    last_run, head_seq = _archivable(db, cutoff.isoformat(), first)
    if last_run is None:
        since = " since its last archive" if first > 1 else ""
        raise UsageError(
            f"no run of the ledger {ledger.path} ended before {cutoff}{since}: nothing to archive"
        )
    try:
        new, record, kept = _prepare(ledger, cutoff, out, perms, first, last_run, head_seq)
    except (OSError, sqlite3.Error) as exc:
        # a full disk or an I/O error anywhere before the swap: the ledger is
        # as it was, and no half-made archive stays to be mistaken for one
        out.unlink(missing_ok=True)
        words = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise OutputError(
            f"cannot archive the ledger {ledger.path} into {out}: {words or exc}"
            "; the ledger is unchanged"
        ) from None
    except (OutputError, LedgerWriteError):
        out.unlink(missing_ok=True)  # before the swap: the ledger is unchanged
        raise
    # 4. the swap: one rename; the lock (a separate file) is held throughout
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.replace(new, ledger.path)
        _fsync_dir(ledger.path.parent)
    except OSError as exc:
        raise LedgerWriteError(f"ledger {ledger.path} cannot be replaced: {exc}") from None
    head_link, plain_head = record["archive"]["head_link"], record["archive"]["plain_head"]
    return Archived(
        out,
        ledger.path,
        first,
        head_seq,
        head_link,
        plain_head,
        f"{_first_run_label(record)}-{last_run}",
        kept,
    )


def _prepare(
    ledger: Ledger,
    cutoff: date,
    out: Path,
    perms: Perms,
    first: int,
    last_run: int,
    head_seq: int,
) -> tuple[Path, dict[str, Any], int]:
    """Steps 1 to 3: the archive file written and the new live ledger beside the old one.

    Returns the new ledger's path, the archive record and the events it kept.
    """
    db = ledger.connection
    meta = read_meta(db)
    prev_link, prev_plain = _before(db, first)
    # 1. the state the archived events leave, by replay (from the base, if archived before)
    base = db if first > 1 else None
    replay, scratch = replay_mod.with_scratch(
        ledger.path.parent,
        base,
        lambda r: r.add_all(db, first - 1, head_seq),
        prefix=scratch_prefix(ledger.path),
    )
    try:
        state_sha = replay_mod.state_hash(scratch)
        head_link, plain_head = _link_at(db, head_seq)
        # 2. the archive file: written, synced, checked, before anything is replaced
        _write_archive(db, scratch, out, perms, first, head_seq)
        # 3. the new live ledger beside the old one
        new = ledger.path.with_name(f".{ledger.path.name}.archiving")
        new.unlink(missing_ok=True)
        precreate(new, perms)
        record = {
            "archive": {
                "file": str(out.absolute()),
                "first_seq": first,
                "prev_link": prev_link,
                "prev_plain": prev_plain,
                "head_seq": head_seq,
                "head_link": head_link,
                "plain_head": plain_head,
                "events": head_seq - first + 1,
                "runs": [_first_run(db), last_run],
            },
            "before": cutoff.isoformat(),
            "meta": meta,
            "state_sha256": state_sha,
        }
        kept = _write_live(db, scratch, new, ledger, meta, head_seq, record)
    finally:
        replay.close()
    return new, record, kept


def _first_run_label(record: dict[str, Any]) -> int:
    return int(record["archive"]["runs"][0])


def _archivable(db: sqlite3.Connection, cutoff: str, first: int = 1) -> tuple[int | None, int]:
    """The last run of the longest prefix of runs that ended before ``cutoff``, and its last seq.

    A run ends at its run_finished, or (killed) when the next one started.
    Only runs still in the ledger count (``first``: its first event): the
    runs an earlier archive took are not archived again.
    """
    runs = db.execute(
        "SELECT run, first_seq, started_at, finished_at FROM run_state WHERE first_seq >= ? "
        "ORDER BY run",
        (first,),
    ).fetchall()
    last: int | None = None
    for i, (_run, _first, _started, finished) in enumerate(runs):
        ended = finished or (runs[i + 1][2] if i + 1 < len(runs) else None)
        if ended is None or ended[:10] >= cutoff:
            break
        last = i
    if last is None:
        return None, 0
    if last + 1 < len(runs):
        head = int(runs[last + 1][1]) - 1
    else:
        head = int(db.execute("SELECT max(seq) FROM events").fetchone()[0])
    return int(runs[last][0]), head


def _first_run(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT min(run) FROM events WHERE run > 0").fetchone()
    return int(row[0] or 0)


def _before(db: sqlite3.Connection, first: int) -> tuple[str, str]:
    """The keyed and plain links before the ledger's first event."""
    if first == 1:
        return GENESIS, PLAIN_GENESIS
    for (detail,) in db.execute("SELECT detail FROM archives ORDER BY seq DESC"):
        arch = loads(ArchivedDetail, detail).archive
        if arch.head_seq == first - 1:
            return arch.head_link, arch.plain_head
    raise LedgerWriteError("the ledger's archive record is missing: run erasure verify")


def _link_at(db: sqlite3.Connection, seq: int) -> tuple[str, str]:
    row = db.execute(
        "SELECT e.link, p.link FROM events e JOIN plain_links p ON p.seq = e.seq WHERE e.seq = ?",
        (seq,),
    ).fetchone()
    return str(row[0]), str(row[1])


def _copy_events(
    source: sqlite3.Connection, target: sqlite3.Connection, low: int, high: int
) -> int:
    """Copy events (and their plain links) with low < seq <= high, verbatim; how many."""
    cursor = source.execute(
        f"SELECT {', '.join(COLUMNS)} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
        (low, high),
    )
    insert_sql = (
        f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    n = 0
    while rows := cursor.fetchmany(10_000):
        target.executemany(insert_sql, rows)
        n += len(rows)
    plain = source.execute(
        "SELECT seq, link FROM plain_links WHERE seq > ? AND seq <= ? ORDER BY seq", (low, high)
    )
    while rows := plain.fetchmany(10_000):
        target.executemany("INSERT INTO plain_links VALUES (?, ?)", rows)
    return n


def _write_archive(
    db: sqlite3.Connection,
    scratch: sqlite3.Connection,
    out: Path,
    perms: Perms,
    first: int,
    head_seq: int,
) -> None:
    tmp = out.with_name(f".{out.name}.writing")
    tmp.unlink(missing_ok=True)
    try:
        precreate(tmp, perms)
        with closing(sqlite3.connect(tmp, isolation_level=None)) as arch:
            arch.execute("BEGIN")
            create_schema(arch)
            state.create(arch, with_triggers=False)
            arch.execute("DELETE FROM totals")
            arch.executemany("INSERT INTO meta VALUES (?, ?)", db.execute("SELECT * FROM meta"))
            _copy_events(db, arch, first - 1, head_seq)
            for table in state.TABLES:
                replay_mod.copy_rows(scratch, table, arch, table)
            for table in ("events", "meta", "plain_links", *state.TABLES):
                arch.execute(
                    f"CREATE TRIGGER {table}_sealed BEFORE INSERT ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{_SEALED}'); END"
                )
            arch.execute("COMMIT")
            arch.execute("PRAGMA journal_mode=DELETE")
        _fsync(tmp)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except (OSError, sqlite3.Error) as exc:
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        raise OutputError(f"cannot write the archive {out}: {exc}") from None


def _write_live(
    db: sqlite3.Connection,
    scratch: sqlite3.Connection,
    new: Path,
    ledger: Ledger,
    meta: dict[str, str],
    head_seq: int,
    record: dict[str, Any],
) -> int:
    """Write the new live ledger at ``new``; the number of events it kept."""
    try:
        with closing(sqlite3.connect(new, isolation_level=None)) as live:
            live.execute("PRAGMA journal_mode=WAL")
            live.execute("BEGIN")
            create_schema(live)
            state.create(live, with_triggers=False)
            live.execute("DELETE FROM totals")
            live.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            for table in state.TABLES:
                live.execute(f"CREATE TABLE base_{table} AS SELECT * FROM {table} WHERE 0")
                replay_mod.copy_rows(scratch, table, live, f"base_{table}")
                replay_mod.copy_rows(scratch, table, live, table)
                live.execute(
                    f"CREATE TRIGGER base_{table}_no_update BEFORE UPDATE ON base_{table} "
                    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
                )
                live.execute(
                    f"CREATE TRIGGER base_{table}_no_delete BEFORE DELETE ON base_{table} "
                    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
                )
            state.create_triggers(live)
            kept = _copy_events(db, live, head_seq, ledger.head_seq)
            detail = encode(build(ArchivedDetail, record))
            event = Event(Kind.ARCHIVED, 0, detail=detail)
            insert(
                live, ledger.keyer, [event], ledger.head_seq, ledger.head_link, ledger.plain_head,
                canonical=canonical_of(meta),
            )  # fmt: skip
            live.execute("COMMIT")
            live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _fsync(new)
    except (OSError, sqlite3.Error) as exc:
        for leftover in (new, *(Path(f"{new}{end}") for end in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
        raise LedgerWriteError(f"cannot write the new ledger {new}: {exc}") from None
    return kept


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clear_leftovers(ledger: Path, out: Path) -> None:
    """Remove what a killed archive of this ledger left: its new ledger and archive in the making.

    Called with the ledger's lock held, so no other archive of it is running.
    The replay scratch files are named after the ledger (:func:`scratch_prefix`).
    """
    names = [f".{ledger.name}.archiving", f".{out.name}.writing"]
    for name in names:
        for end in ("", "-wal", "-shm", "-journal"):
            (ledger.parent / f"{name}{end}").unlink(missing_ok=True)
    for leftover in ledger.parent.glob(f"{scratch_prefix(ledger)}*"):
        leftover.unlink(missing_ok=True)


def scratch_prefix(ledger: Path) -> str:
    """The name every replay scratch file of ``ledger`` begins with (hidden, beside it)."""
    return f".{ledger.name}.replay-"
