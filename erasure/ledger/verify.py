"""``erasure verify``: the keyed chain, the plain chain, the structure and the derived state.

The full check streams the events once, oldest first: each row is
recomputed into both chains and replayed into a scratch copy of the
derived state (erasure.ledger.replay.Replay), which is then compared with
the ledger's own, table by table, inside SQLite. ``--from SEQ:LINK``
checks only the events after a head printed earlier (both chains), so a
nightly check costs what the night wrote.

A ledger whose first events were archived (erasure.ledger.archive) starts
at the event after the archive's head; the archive record cites that head,
and the chain runs on from it. Without the archive file the live ledger and
the record are checked and the archive is reported as not checked; with
``--archive PATH`` the archive's own events are checked too, as the start
of the same chain.

Longer than most modules: the full check, the ``--from`` check and the
archive's start walk the same two chains with one walker (:class:`_Walk`);
split, they would drift in what they check.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from erasure.errors import LedgerMismatch
from erasure.keys import Keyer
from erasure.ledger import details, state
from erasure.ledger import replay as replay_mod
from erasure.ledger.events import COLUMNS, DETAIL, GENESIS, Canonical, Kind, canonical_of
from erasure.ledger.lockprobe import running
from erasure.ledger.read import open_events, read_meta
from erasure.ledger.store import check_meta
from erasure.plainchain import PLAIN_GENESIS


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What :func:`verify` found."""

    ok: bool
    events: int  # events checked
    head_seq: int
    head_link: str
    problem: str | None = None  # names the first broken event (or derived row)
    plain_link: str | None = None  # the plain chain's head, when the ledger keeps it
    notes: tuple[str, ...] = field(default=())  # what was not checked, and why; the timings
    timings: tuple[Timing, ...] = field(default=())  # each part of a full check, on its own


class _Broken(Exception):
    def __init__(self, problem: str, checked: int, seq: int, link: str) -> None:
        super().__init__(problem)
        self.problem, self.checked, self.seq, self.link = problem, checked, seq, link


_BATCH = 10_000  # rows per fetchmany: few round trips, a few MiB at most
_REPLAY_BATCH = 50_000  # events per INSERT ... SELECT into the scratch copy
_REPLAY_CACHE_KIB = 256 * 1024  # the scratch's page cache (KiB): the derived state's hot pages
# Version 1's canonical bytes made by SQLite: json_array's compact JSON is byte
# for byte orjson's for the events' integers, NULLs and text (tests/test_verify.py
# holds the two together), so a row reaches Python as one bytes object (its
# UTF-8, cast to a BLOB) instead of twenty objects. A row whose SQL bytes do
# not give the stored link is made again by the ledger's own encoding
# (erasure.ledger.events.canonical_of its meta) before it is called broken, so
# a difference between the two could cost time, never a false alarm.
_CANONICAL_SQL = f"CAST(json_array({', '.join('e.' + c for c in COLUMNS[:-1])}) AS BLOB)"


class Part(enum.StrEnum):
    """The parts of a full check, each timed on its own: a closed set."""

    # Both chains (keyed HMAC and plain SHA-256) and the structure (no gap, meta = event 1).
    CHAIN = "chain"
    # The events replayed into a scratch copy of the derived tables, compared with the ledger's.
    DERIVED = "derived state"


@dataclass(frozen=True, slots=True)
class Timing:
    """How long one part of :func:`verify` took."""

    part: Part
    events: int  # events walked (chain) or replayed (derived state)
    seconds: float  # wall clock

    def line(self) -> str:
        """One line for a person, e.g. ``chain: 270,019 events in 1.84 s``."""
        what = "events checked" if self.part is Part.CHAIN else "events replayed and compared"
        return f"{self.part}: {self.events:,} {what} in {self.seconds:.2f} s"


@dataclass(slots=True)
class _Walk:
    """One pass over consecutive events: both chains and the structure, streamed."""

    keyer: Keyer
    canonical: Canonical  # the ledger's encoding of what a link covers (its meta's)
    seq: int  # the event before the first one walked
    link: str
    plain: str | None  # None: the ledger keeps no plain chain (not migrated)
    checked: int = 0
    meta: dict[str, str] | None = None  # checked against event 1 (created) when walked

    def run(self, db: sqlite3.Connection, after: int) -> None:
        """Walk the events after ``after``; raise :class:`_Broken` at the first bad one.

        The loop is the whole cost of a full check: per event one string
        from SQLite, two hash states copied (erasure.keys.Keyer.chain), one
        SHA-256 and three comparisons; no dict, no object per row.
        """
        kept = self.plain is not None
        cursor = db.execute(
            f"SELECT e.seq, {_CANONICAL_SQL}, e.link, {'p.link' if kept else 'NULL'} "
            f"FROM events e {'LEFT JOIN plain_links p ON p.seq = e.seq' if kept else ''} "
            "WHERE e.seq > ? ORDER BY e.seq",
            (after,),
        )
        chain = self.keyer.chain
        sha256 = hashlib.sha256
        link, expected = self.link, self.seq
        # the plain chain is carried as its 32 bytes: no hex round trip per event
        plain = bytes.fromhex(self.plain) if self.plain is not None else b""
        try:
            while rows := cursor.fetchmany(_BATCH):
                for seq, data, stored, stored_plain in rows:
                    expected += 1
                    if seq != expected:
                        raise _Broken(
                            f"event {expected} is missing (the next one is {seq})"
                            if seq > expected
                            else f"event {seq} appears twice",
                            self.checked,
                            expected - 1,
                            link,
                        )
                    computed = chain(link, data)
                    if computed != stored:
                        data = _canonical_of(db, seq, self.canonical)
                        computed = chain(link, data)
                        if computed != stored:
                            kind, run = db.execute(
                                "SELECT kind, run FROM events WHERE seq = ?", (seq,)
                            ).fetchone()
                            raise _Broken(
                                f"event {seq} ({kind}, run {run}) does not match its chain "
                                "link: it or an earlier event was changed, inserted or moved",
                                self.checked,
                                seq - 1,
                                link,  # the head is the last event intact: seq - 1's link
                            )
                    if kept:
                        following = sha256(plain + data).digest()
                        if following.hex() != stored_plain:
                            raise _Broken(
                                f"event {seq} does not match its plain chain link "
                                "(plain_links was changed, or lacks the event)",
                                self.checked,
                                seq - 1,
                                link,  # seq - 1's, not this event's
                            )
                        plain = following
                    link = computed
                    if seq == 1 and self.meta is not None:
                        _check_created(data, self.meta, link)
                    self.checked += 1
        finally:
            self.seq, self.link = expected, link
            if kept:
                self.plain = plain.hex()


def _check_created(data: bytes, meta: dict[str, str], link: str) -> None:
    """Event 1 (created) must carry the meta table's values: the chain covers them there."""
    event = orjson.loads(data)  # [seq, at, kind, ..., detail]
    kind, detail = event[2], event[2 + DETAIL]
    if kind != Kind.CREATED or json.loads(detail or "{}") != meta:
        raise _Broken("the meta table does not match event 1 (created)", 0, 0, link)


def _canonical_of(db: sqlite3.Connection, seq: int, canonical: Canonical) -> bytes:
    """Event ``seq``'s canonical bytes as the writer made them (erasure.ledger.events)."""
    row = db.execute(
        f"SELECT {', '.join(COLUMNS[:-1])} FROM events WHERE seq = ?", (seq,)
    ).fetchone()
    return canonical(row[0], row[1], row[2:])


def archive_records(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every ``archived`` record the ledger holds (its own and earlier ones), oldest first.

    A ledger not migrated keeps no ``archives`` table: its own records are its
    ``archived`` events (verify's replay may read the events themselves).
    """
    table = "archives" if state.has_state(db) else "events WHERE kind = 'archived'"
    return [
        {**json.loads(detail), "seq": seq}
        for seq, detail in db.execute(f"SELECT seq, detail FROM {table} ORDER BY seq")
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
    with closing(open_events(path)) as db:
        meta = read_meta(db)
        check_meta(meta, keyer, path)
        kept = state.has_state(db)
        notes: list[str] = []
        if not kept:
            notes.append("the ledger keeps no derived state yet (not migrated): not checked")
        elif derived and start is None and running(path):
            # the replay reads the events on a connection of its own: while a run
            # appends, the two would see different moments and disagree
            derived = False
            notes.append(
                "a run holds the ledger: the derived state is compared when no run does "
                "(the chains were checked)"
            )
        first = db.execute("SELECT min(seq) FROM events").fetchone()[0] or 1
        records = archive_records(db)
        canonical = canonical_of(meta, f"ledger {path}")
        walk = _Walk(keyer, canonical, 0, GENESIS, PLAIN_GENESIS if kept else None, meta=meta)
        try:
            if first > 1:
                walk = _start_after_archive(db, path, keyer, walk, first, records, archives, notes)
            if start is not None:
                return _from(db, walk, start, kept, notes)
            return _full(db, path, walk, kept and derived, first, records, notes)
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
        walk.canonical,
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
        db = open_events(archive_path)
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
            canonical_of(read_meta(db), f"the archive {archive_path}"),
            low - 1,
            arch["prev_link"],
            arch["prev_plain"],
            meta=meta if low == 1 else None,
        )
        walk.run(db, low - 1)
        problem = details.first_misfit(db, low - 1)
        if problem is not None:
            raise _Broken(f"the archive {archive_path}: {problem}", walk.checked, high, walk.link)
        if (walk.link, walk.plain) != (arch["head_link"], arch["plain_head"]):
            raise _Broken(
                f"the archive {archive_path} does not end at the head its record cites "
                f"(event {high})",
                walk.checked,
                high,
                walk.link,
            )
        if replay_mod.state_hash(db) != record["state_sha256"]:
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
    walk = _Walk(walk.keyer, walk.canonical, seq, link, stored[1] if kept else None)
    walk.run(db, seq)
    problem = details.first_misfit(db, seq)
    notes.append(f"checked the events after {seq} only; the derived state is checked in full")
    ok = problem is None
    return ChainCheck(ok, walk.checked, walk.seq, walk.link, problem, walk.plain, tuple(notes))


def _full(
    db: sqlite3.Connection,
    path: Path,
    walk: _Walk,
    replay_needed: bool,
    first: int,
    records: list[dict[str, Any]],
    notes: list[str],
) -> ChainCheck:
    """The whole chain, then (a migrated ledger) the derived state, each timed."""
    started = time.perf_counter()
    walk.run(db, walk.seq)
    problem = details.first_misfit(db, first - 1)  # each event's detail by its kind
    timings = [Timing(Part.CHAIN, walk.checked, time.perf_counter() - started)]
    if replay_needed and problem is None:
        started = time.perf_counter()
        if first > 1:
            record = next(r for r in records if r["archive"]["head_seq"] == first - 1)
            if replay_mod.state_hash(db, "base_") != record["state_sha256"]:
                raise _Broken(
                    "the archived pairs' state kept in the ledger does not match the archive "
                    "record's hash",
                    0,
                    first - 1,
                    walk.link,
                )
        problem = _replay_and_compare(db, path, archived=first > 1)
        timings.append(Timing(Part.DERIVED, walk.checked, time.perf_counter() - started))
    notes.extend(t.line() for t in timings)
    return ChainCheck(
        problem is None,
        walk.checked,
        walk.seq,
        walk.link,
        problem,
        plain_link=walk.plain,
        notes=tuple(notes),
        timings=tuple(timings),
    )


def _replay_and_compare(db: sqlite3.Connection, path: Path, *, archived: bool) -> str | None:
    """Replay every event into a scratch copy of the derived tables; the first difference.

    The derivation is the ledger's own (erasure.ledger.state's triggers,
    fired by inserting the events into the scratch file); only the plumbing
    is tuned for one bulk pass: no journal, no fsync, one transaction, a
    large page cache, and the events copied by ``INSERT ... SELECT`` from
    the ledger attached read-only, so that no row becomes a Python object.
    The scratch keeps only the newest event (the guard triggers compare
    with it), so it stays the size of the derived state.
    """
    fd, name = tempfile.mkstemp(prefix=".erasure-verify-", suffix=".sqlite")  # owner-only
    os.close(fd)
    scratch_path = Path(name)
    try:
        scratch = sqlite3.connect(scratch_path.as_uri(), uri=True, isolation_level=None)
        with closing(scratch):
            _replay(scratch, path, archived)
        db.execute("ATTACH DATABASE ? AS scratch", (str(scratch_path),))
        try:
            return replay_mod.compare(db, "scratch")
        finally:
            db.execute("DETACH DATABASE scratch")
    finally:
        scratch_path.unlink(missing_ok=True)


def _replay(scratch: sqlite3.Connection, path: Path, archived: bool) -> None:
    scratch.execute("PRAGMA journal_mode=OFF")  # a scratch file: nothing to keep if we stop
    scratch.execute("PRAGMA synchronous=OFF")
    scratch.execute("PRAGMA main.locking_mode=EXCLUSIVE")  # not the ledger's
    scratch.execute(f"PRAGMA cache_size=-{_REPLAY_CACHE_KIB}")
    scratch.execute("ATTACH DATABASE ? AS ledger", (f"{path.absolute().as_uri()}?mode=ro",))
    scratch.execute("BEGIN")
    # seq keeps INTEGER PRIMARY KEY (the guards' max(seq) is one step); the other
    # columns take the ledger's values and types as they are
    scratch.execute(f"CREATE TABLE main.events (seq INTEGER PRIMARY KEY, {', '.join(COLUMNS[1:])})")
    state.create(scratch, with_triggers=False)
    if archived:  # start from the state the archived events left
        replay_mod.load_base(scratch, "ledger", scratch)
    state.create_triggers(scratch)
    low, high = scratch.execute("SELECT min(seq) - 1, max(seq) FROM ledger.events").fetchone()
    insert = (
        f"INSERT INTO main.events ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} "
        "FROM ledger.events WHERE seq > ? AND seq <= ? ORDER BY seq"
    )
    while low is not None and low < high:
        top = min(low + _REPLAY_BATCH, high)
        scratch.execute(insert, (low, top))
        scratch.execute("DELETE FROM main.events WHERE seq < ?", (top,))
        low = top
    scratch.execute("COMMIT")
    scratch.execute("DETACH DATABASE ledger")
