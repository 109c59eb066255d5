"""A person's decisions about requests: legal holds and cancellations.

Both are events in the ledger (kinds ``hold``, ``release``, ``cancel``,
``reopen``), folded into ``decision_state`` (erasure.ledger.state). A
decision selects by request id (``request_id``) or by identifier (``key``;
an identifier may have several keys, one event each). Its detail holds
``id``, ``reason``, ``who`` (OS user@host), ``at`` and a hold's ``until``:
words and keys, never an identifier.

The rules, one place each:

- A hold stands from its event until a release of the same selector or its
  ``until`` (exclusive), whichever comes first.
- A pair is **held** when its key is held, when its request is held, or when
  its request names a held key (a request's phone must not erase the
  profile its held email protects); and a key is never sent while any
  request naming it is held (the delete would erase what the hold keeps).
- A request is **cancelled** from a ``cancel`` until a ``reopen``. Its open
  pairs are never sent; pairs that had a final outcome keep it.
- ``held`` comes before ``cancelled`` (the partition's order).

Pure functions over small sets, plus the reads that build them; the
commands live in erasure.decide; what a run holds back (its plan less the
decided pairs, and the live gate) in erasure.holdback; the decisions in
words, for lookup, receipts and reports, in erasure.decision_words.
"""

from __future__ import annotations

import enum
import getpass
import socket
import sqlite3
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from erasure.ledger import details
from erasure.ledger.details import CancelDetail, HoldDetail, loads
from erasure.ledger.events import Event, Kind, Outcome


class Decision(enum.StrEnum):
    """What a person decided about a pair: a closed set (the partition's two reasons)."""

    HELD = "held"  # a legal hold: never sent while it stands
    CANCELLED = "cancelled"  # its request was withdrawn: final, never sent


@dataclass(frozen=True, slots=True)
class Standing:
    """One hold or cancellation in force: its selector, and who decided what, when, why."""

    seq: int | None  # its event (None: still queued for the ledger's writer)
    kind: Kind  # HOLD or CANCEL
    request_id: str | None
    key: str | None
    at: str  # when it was decided, UTC ISO 8601
    reason: str
    who: str
    until: str | None = None  # a hold's end, UTC ISO 8601 (exclusive); None: until released

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "request_id": self.request_id,
            "key": self.key,
            "at": self.at,
            "reason": self.reason,
            "who": self.who,
            "until": self.until,
            "queued": self.seq is None,
        }


@dataclass(frozen=True, slots=True)
class Decisions:
    """The holds and cancellations standing at one instant."""

    holds: tuple[Standing, ...] = ()
    cancels: tuple[Standing, ...] = ()

    @property
    def held_keys(self) -> frozenset[str]:
        return frozenset(h.key for h in self.holds if h.key is not None)

    @property
    def held_requests(self) -> frozenset[str]:
        return frozenset(h.request_id for h in self.holds if h.request_id is not None)

    @property
    def cancelled(self) -> frozenset[str]:
        return frozenset(c.request_id for c in self.cancels if c.request_id is not None)

    def __bool__(self) -> bool:
        return bool(self.holds or self.cancels)

    def reason_of(self, request_id: str | None, key: str | None) -> Standing | None:
        """The standing decision that explains a pair's state (a hold first), if any."""
        for h in self.holds:
            if (h.key is not None and h.key == key) or (
                h.request_id is not None and h.request_id == request_id
            ):
                return h
        for c in self.cancels:
            if c.request_id == request_id:
                return c
        return None


# ---------------------------------------------------------------- who, when, ids


def who() -> str:
    """The OS user and host who decided (recorded with every decision)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        import os

        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def event(
    kind: Kind,
    *,
    request_id: str | None,
    key: str | None,
    reason: str,
    now: datetime,
    by: str,
    until: datetime | None = None,
    extra: dict[str, object] | None = None,
) -> Event:
    """One decision event (run 0: a person's, not a run's); ``reason`` already scrubbed."""
    detail: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "reason": reason,
        "who": by,
        "at": iso(now),
        **(extra or {}),
    }
    if until is not None:
        detail["until"] = iso(until)
    return Event(
        kind,
        0,
        key=key,
        request_id=request_id,
        detail=details.encode(details.decision(kind, **detail)),
    )


# ---------------------------------------------------------------- reading

_STANDING_SQL = """
    SELECT seq, kind, request_id, key, at, reason, who, until FROM decision_state
    WHERE ended_by IS NULL AND kind IN ('hold', 'cancel') ORDER BY seq
"""
_ENDS = {Kind.RELEASE: Kind.HOLD, Kind.REOPEN: Kind.CANCEL}


def standing(db: sqlite3.Connection, now: datetime, queued: Iterable[Event] = ()) -> Decisions:
    """The holds and cancellations in force at ``now``: the ledger's, then the queued ones.

    ``queued`` are events still waiting in the decisions queue
    (erasure.ledger.pending), applied in order after the ledger's.
    """
    found = [
        Standing(seq, Kind(kind), rid, key, at, reason or "", by or "", until)
        for seq, kind, rid, key, at, reason, by, until in db.execute(_STANDING_SQL)
    ]
    for e in queued:
        if e.kind in _ENDS:
            ended = _ENDS[e.kind]
            found = [
                s
                for s in found
                if not (s.kind is ended and s.request_id == e.request_id and s.key == e.key)
            ]
        elif e.kind in (Kind.HOLD, Kind.CANCEL):
            d = loads(HoldDetail if e.kind is Kind.HOLD else CancelDetail, e.detail)
            until = d.until if isinstance(d, HoldDetail) else None
            found.append(Standing(None, e.kind, e.request_id, e.key, d.at, d.reason, d.who, until))
    at = iso(now)
    holds = tuple(s for s in found if s.kind is Kind.HOLD and (s.until is None or s.until > at))
    cancels = tuple(s for s in found if s.kind is Kind.CANCEL)
    return Decisions(holds, cancels)


def read(db: sqlite3.Connection, ledger: Path, now: datetime) -> Decisions:
    """:func:`standing` with what waits in ``ledger``'s decisions queue."""
    from erasure.ledger import pending

    return standing(db, now, [e for _, e in pending.peek(ledger)])


def requests_naming(db: sqlite3.Connection, keys: Collection[str]) -> set[str | None]:
    """The request ids the ledger's pairs name ``keys`` under (by the key index)."""
    if not keys:
        return set()
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"SELECT DISTINCT request_id FROM pair_state WHERE key IN ({marks})", sorted(keys)
    )
    return {r[0] for r in rows}


def known_request(db: sqlite3.Connection, request_id: str) -> bool:
    """Whether the ledger has heard of ``request_id`` (a pair or an invalid record)."""
    row = db.execute(
        "SELECT 1 FROM request_state WHERE request_id = ? LIMIT 1", (request_id,)
    ).fetchone()
    return row is not None


# ---------------------------------------------------------------- outcomes

_OPEN = (None, "failed")  # outcomes a decision may replace (pending or failed)
_DECIDED = (Outcome.HELD.value, Outcome.CANCELLED.value)


def _in(column: str, values: Collection[str | None]) -> tuple[str, list[str]]:
    wanted = sorted(v for v in values if v is not None)
    return f"{column} IN ({','.join('?' * len(wanted))})", wanted


def sync(db: sqlite3.Connection, now: datetime | None = None) -> list[Event]:
    """The events that bring the ledger's pairs in line with the decisions standing at ``now``.

    For the writer holding the lock, after the decisions are appended: a
    ``release`` for each hold whose ``until`` has passed, then an
    ``outcome`` (run 0) for each pair whose state differs from what the
    decisions say: ``held`` or ``cancelled`` for an open pair they name,
    no outcome (open again) for a held or cancelled pair they no longer
    name. A pair with a final outcome (erased, not_found, rejected) keeps
    it. Only the pairs of requests and keys some decision ever named are
    read, by index.
    """
    at = now if now is not None else datetime.now(UTC)
    events = _expired(db, at)
    found = standing(db, at, events)
    named = db.execute("SELECT DISTINCT request_id, key FROM decision_state").fetchall()
    rids = {r for r, _ in named if r is not None}
    keys = {k for _, k in named if k is not None}
    rids |= {r for r in requests_naming(db, keys) if r is not None}
    pairs = _pairs(db, rids, keys)
    held_rids = set(found.held_requests) | {
        r for r, k, _ in pairs if k in found.held_keys and r is not None
    }
    held_keys = set(found.held_keys) | {k for r, k, _ in pairs if r in held_rids}
    for rid, key, outcome in pairs:
        if outcome not in _OPEN and outcome not in _DECIDED:
            continue  # final: a decision never changes what happened
        want: str | None = None
        if key in held_keys or rid in held_rids:
            want = Outcome.HELD.value
        elif rid is not None and rid in found.cancelled:
            want = Outcome.CANCELLED.value
        current = outcome if outcome in _DECIDED else None
        if want == current:
            continue
        events.append(
            Event(
                Kind.OUTCOME,
                0,
                key=key,
                request_id=rid,
                outcome=None if want is None else Outcome(want),
                detail=details.encode(details.DecisionOutcome(want or "open")),  # type: ignore[arg-type]
            )
        )
    return events


def _pairs(
    db: sqlite3.Connection, rids: Collection[str], keys: Collection[str]
) -> list[tuple[str | None, str, str | None]]:
    """(request_id, key, outcome) of the pairs of ``rids``, naming ``keys``, or their keys."""
    found: dict[tuple[str | None, str], str | None] = {}
    if rids:
        where, args = _in("request_id", rids)
        for r, k, o in db.execute(
            f"SELECT request_id, key, outcome FROM pair_state WHERE {where}", args
        ):
            found[(r, k)] = o
    more = set(keys) | {k for _, k in found}
    if more:
        where, args = _in("key", more)
        for r, k, o in db.execute(
            f"SELECT request_id, key, outcome FROM pair_state WHERE {where}", args
        ):
            found[(r, k)] = o
    return [(r, k, o) for (r, k), o in found.items()]


def _expired(db: sqlite3.Connection, at: datetime) -> list[Event]:
    """A ``release`` for each selector whose standing holds have all passed their ``until``.

    A release ends every hold of its selector: one whose other hold still
    stands (no end, or a later one) is left alone; its passed hold holds
    nothing all the same (:func:`standing` reads ``until``).
    """
    now = iso(at)
    rows = db.execute(
        "SELECT request_id, key, until FROM decision_state "
        "WHERE kind = 'hold' AND ended_by IS NULL AND until IS NOT NULL AND until <= ?",
        (now,),
    ).fetchall()
    if not rows:
        return []
    done: set[tuple[str | None, str | None]] = {
        (rid, key)
        for rid, key in db.execute(
            "SELECT request_id, key FROM decision_state WHERE kind = 'hold' "
            "AND ended_by IS NULL AND (until IS NULL OR until > ?)",
            (now,),
        )
    }
    out = []
    for rid, key, until in rows:
        if (rid, key) in done:
            continue
        done.add((rid, key))
        out.append(
            event(
                Kind.RELEASE, request_id=rid, key=key, now=at, by="erasure",
                reason=f"the hold's end ({until}) has passed", extra={"expired": True},
            )
        )  # fmt: skip
    return out
