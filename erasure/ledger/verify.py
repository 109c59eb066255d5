"""``erasure verify``: the keyed chain, the plain chain, the structure and the derived state.

The full check streams the events once, oldest first: each row is
recomputed into both chains and replayed into a scratch copy of the
derived state (erasure.ledger.state.Replay), which is then compared with
the ledger's own, table by table, inside SQLite. ``--from SEQ:LINK``
checks only the events after a head printed earlier (both chains), so a
nightly check costs what the night wrote.

A ledger whose first events were archived (erasure.ledger.archive) starts
at the event after the archive's head; the archive record cites that head,
and the chain runs on from it. Without the archive file the live ledger and
the record are checked and the archive is reported as not checked; with
``--archive PATH`` the archive's own events are checked too, as the start
of the same chain.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erasure.errors import LedgerMismatch
from erasure.keys import Keyer
from erasure.ledger import state
from erasure.ledger.events import COLUMNS, DETAIL, GENESIS, Kind, canonical
from erasure.ledger.read import open_readonly, read_meta
from erasure.ledger.store import check_meta
from erasure.receipts.canonical import PLAIN_GENESIS, plain_link


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What :func:`verify` found."""

    ok: bool
    events: int  # events checked
    head_seq: int
    head_link: str
    problem: str | None = None  # names the first broken event (or derived row)
    plain_link: str | None = None  # the plain chain's head, when the ledger keeps it
    notes: tuple[str, ...] = field(default=())  # what was not checked, and why


class _Broken(Exception):
    def __init__(self, problem: str, checked: int, seq: int, link: str) -> None:
        super().__init__(problem)
        self.problem, self.checked, self.seq, self.link = problem, checked, seq, link


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    while batch := cursor.fetchmany(10_000):
        yield from batch


@dataclass(slots=True)
class _Walk:
    """One pass over consecutive events: both chains, and the rows for a replay."""

    keyer: Keyer
    seq: int  # the event before the first one walked
    link: str
    plain: str | None  # None: the ledger keeps no plain chain (not migrated)
    checked: int = 0
    meta: dict[str, str] | None = None  # checked against event 1 (created) when walked

    def run(self, db: sqlite3.Connection, replay: state.Replay | None, after: int) -> None:
        plain_col = "p.link" if self.plain is not None else "NULL"
        join = "LEFT JOIN plain_links p ON p.seq = e.seq" if self.plain is not None else ""
        cursor = db.execute(
            f"SELECT {', '.join('e.' + c for c in COLUMNS)}, {plain_col} "
            f"FROM events e {join} WHERE e.seq > ? ORDER BY e.seq",
            (after,),
        )
        chain = self.keyer.chain
        link, plain, expected = self.link, self.plain, self.seq
        batch: list[Sequence[Any]] = []
        for row in _rows(cursor):
            expected += 1
            seq, at, *values, stored, stored_plain = row
            if seq != expected:
                problem = (
                    f"event {expected} is missing (the next one is {seq})"
                    if seq > expected
                    else f"event {seq} appears twice"
                )
                raise _Broken(problem, self.checked, expected - 1, link)
            data = canonical(seq, at, values)
            link = chain(link, data)
            if link != stored:
                raise _Broken(
                    f"event {seq} ({values[0]}, run {values[1]}) does not match its chain "
                    "link: it or an earlier event was changed, inserted or moved",
                    self.checked,
                    seq - 1,
                    stored,
                )
            if plain is not None:
                plain = plain_link(plain, data)
                if plain != stored_plain:
                    raise _Broken(
                        f"event {seq} does not match its plain chain link "
                        "(plain_links was changed, or lacks the event)",
                        self.checked,
                        seq - 1,
                        link,
                    )
            if seq == 1 and self.meta is not None:
                created = json.loads(values[DETAIL] or "{}")
                if values[0] != Kind.CREATED or created != self.meta:
                    raise _Broken("the meta table does not match event 1 (created)", 0, 0, link)
            self.checked += 1
            if replay is not None:
                batch.append(row[:-1])
                if len(batch) >= 10_000:
                    replay.add(batch)
                    batch = []
        if replay is not None:
            replay.add(batch)
        self.seq, self.link, self.plain = expected, link, plain


def archive_records(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every ``archived`` record the ledger holds (its own and earlier ones), oldest first."""
    if not state.has_state(db):
        return []
    return [
        {**json.loads(detail), "seq": seq}
        for seq, detail in db.execute("SELECT seq, detail FROM archives ORDER BY seq")
    ]


def verify(
    path: Path,
    keyer: Keyer,
    *,
    start: tuple[int, str] | None = None,
    archives: Sequence[Path] = (),
    derived: bool = True,
) -> ChainCheck:
    """Check the ledger at ``path``: chains, structure and (full check) derived state.

    ``start`` is a head ``(seq, link)`` printed earlier: only what follows
    is checked. ``archives`` are archive files to check as the start of the
    chain. ``derived=False`` skips the replay of the derived state.
    """
    with closing(open_readonly(path)) as db:
        meta = read_meta(db)
        check_meta(meta, keyer, path)
        kept = state.has_state(db)
        notes: list[str] = []
        if not kept:
            notes.append("the ledger keeps no derived state yet (not migrated): not checked")
        first = db.execute("SELECT min(seq) FROM events").fetchone()[0] or 1
        records = archive_records(db)
        walk = _Walk(keyer, 0, GENESIS, PLAIN_GENESIS if kept else None, meta=meta)
        try:
            if first > 1:
                walk = _start_after_archive(db, path, keyer, walk, first, records, archives, notes)
            if start is not None:
                return _from(db, walk, start, kept, notes)
            return _full(db, walk, kept and derived, first, records, notes)
        except _Broken as broken:
            return ChainCheck(
                False,
                broken.checked,
                broken.seq,
                broken.link,
                broken.problem,
                notes=tuple(notes),
            )


def _start_after_archive(
    db: sqlite3.Connection,
    path: Path,
    keyer: Keyer,
    walk: _Walk,
    first: int,
    records: list[dict[str, Any]],
    archives: Sequence[Path],
    notes: list[str],
) -> _Walk:
    """Where the live chain starts: the head of the archive that holds the events before it."""
    cited = [r for r in records if r["archive"]["head_seq"] == first - 1]
    if not cited:
        raise _Broken(
            f"the ledger starts at event {first}, and no archive record cites events 1 to "
            f"{first - 1}: they were removed",
            0,
            0,
            GENESIS,
        )
    record = cited[-1]
    arch = record["archive"]
    if record.get("meta") != walk.meta:
        raise _Broken("the meta table does not match the archive record's", 0, 0, GENESIS)
    by_range = {(r["archive"]["first_seq"], r["archive"]["head_seq"]): r for r in records}
    checked = 0
    for archive_path in archives:
        checked += _check_archive(archive_path, keyer, by_range, walk.meta)
    if not archives:
        where = Path(arch["file"])
        missing = "" if where.exists() else f" (and it is not at {where}: missing)"
        notes.append(
            f"events 1 to {arch['head_seq']} are in the archive {where.name}, not checked"
            f"{missing}: pass --archive PATH to check it"
        )
    return _Walk(
        keyer,
        first - 1,
        arch["head_link"],
        arch["plain_head"] if walk.plain is not None else None,
        checked=checked,
        meta=None,
    )


def _check_archive(
    archive_path: Path,
    keyer: Keyer,
    by_range: dict[tuple[int, int], dict[str, Any]],
    meta: dict[str, str] | None,
) -> int:
    """Walk one archive file's chain and hold it to the record that cites it; its event count."""
    try:
        db = open_readonly(archive_path)
    except LedgerMismatch as exc:
        raise _Broken(f"the archive {archive_path} cannot be read: {exc}", 0, 0, GENESIS) from None
    with closing(db):
        low, high = db.execute("SELECT min(seq), max(seq) FROM events").fetchone()
        record = by_range.get((low, high))
        if record is None:
            raise _Broken(
                f"the archive {archive_path} holds events {low} to {high}; no archive record "
                "of this ledger cites them",
                0,
                0,
                GENESIS,
            )
        arch = record["archive"]
        walk = _Walk(
            keyer,
            low - 1,
            arch["prev_link"],
            arch["prev_plain"],
            meta=meta if low == 1 else None,
        )
        walk.run(db, None, low - 1)
        if (walk.link, walk.plain) != (arch["head_link"], arch["plain_head"]):
            raise _Broken(
                f"the archive {archive_path} does not end at the head its record cites "
                f"(event {high})",
                walk.checked,
                high,
                walk.link,
            )
        if state.state_hash(db) != record["state_sha256"]:
            raise _Broken(
                f"the archive {archive_path}'s state does not match its record's hash",
                walk.checked,
                high,
                walk.link,
            )
        return walk.checked


def _from(
    db: sqlite3.Connection, walk: _Walk, start: tuple[int, str], kept: bool, notes: list[str]
) -> ChainCheck:
    seq, link = start
    if seq == walk.seq:
        stored: tuple[Any, ...] | None = (walk.link, walk.plain)
    else:
        stored = db.execute(
            "SELECT e.link, p.link FROM events e LEFT JOIN plain_links p ON p.seq = e.seq "
            "WHERE e.seq = ?"
            if kept
            else "SELECT link, NULL FROM events WHERE seq = ?",
            (seq,),
        ).fetchone()
    if stored is None or stored[0] != link:
        raise _Broken(
            f"the head {seq}:{link[:16]}… is not in this ledger: it was printed for another "
            "ledger, or the events up to it were changed",
            0,
            seq,
            link,
        )
    walk = _Walk(walk.keyer, seq, link, stored[1] if kept else None)
    walk.run(db, None, seq)
    notes.append(f"checked the events after {seq} only; the derived state is checked in full")
    return ChainCheck(
        True, walk.checked, walk.seq, walk.link, plain_link=walk.plain, notes=tuple(notes)
    )


def _full(
    db: sqlite3.Connection,
    walk: _Walk,
    replay_needed: bool,
    first: int,
    records: list[dict[str, Any]],
    notes: list[str],
) -> ChainCheck:
    if not replay_needed:
        walk.run(db, None, walk.seq)
        return ChainCheck(
            True, walk.checked, walk.seq, walk.link, plain_link=walk.plain, notes=tuple(notes)
        )
    base = db if first > 1 else None
    if base is not None:
        record = next(r for r in records if r["archive"]["head_seq"] == first - 1)
        if state.state_hash(db, "base_") != record["state_sha256"]:
            raise _Broken(
                "the archived pairs' state kept in the ledger does not match the archive "
                "record's hash",
                0,
                first - 1,
                walk.link,
            )
    replay, scratch = state.with_scratch(None, base, lambda r: walk.run(db, r, walk.seq))
    try:
        db.execute("ATTACH DATABASE ? AS scratch", (str(replay.path),))
        try:
            problem = state.compare(db, "scratch")
        finally:
            db.execute("DETACH DATABASE scratch")
    finally:
        replay.close()
    del scratch
    if problem is not None:
        return ChainCheck(
            False,
            walk.checked,
            walk.seq,
            walk.link,
            problem,
            plain_link=walk.plain,
            notes=tuple(notes),
        )
    return ChainCheck(
        True, walk.checked, walk.seq, walk.link, plain_link=walk.plain, notes=tuple(notes)
    )
