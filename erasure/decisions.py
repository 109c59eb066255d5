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
commands live in erasure.decide, the live check of a run in
:class:`Gate`.
"""

from __future__ import annotations

import enum
import getpass
import json
import socket
import sqlite3
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from erasure.ledger.events import Event, Kind
from erasure.ledger.state import has_decisions

if TYPE_CHECKING:
    from erasure.run.plan import Plan


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
        detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
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
    found: list[Standing] = []
    if has_decisions(db):
        for seq, kind, rid, key, at, reason, by, until in db.execute(_STANDING_SQL):
            found.append(Standing(seq, Kind(kind), rid, key, at, reason or "", by or "", until))
    for e in queued:
        d = json.loads(e.detail or "{}")
        if e.kind in _ENDS:
            ended = _ENDS[e.kind]
            found = [
                s
                for s in found
                if not (s.kind is ended and s.request_id == e.request_id and s.key == e.key)
            ]
        elif e.kind in (Kind.HOLD, Kind.CANCEL):
            found.append(
                Standing(
                    None, e.kind, e.request_id, e.key, d.get("at", ""), d.get("reason", ""),
                    d.get("who", ""), d.get("until"),
                )
            )  # fmt: skip
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


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Gate:
    """What a run must not send, checked before every request; grows while the run runs.

    Mutable on purpose: the run's poll of the decisions queue adds to it
    (:meth:`add`) while its workers ask it (:meth:`blocks`), in one thread.
    """

    held_keys: set[str] = field(default_factory=set)
    held_requests: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, decisions: Decisions, naming: Iterable[str | None] = ()) -> Gate:
        """A gate from standing decisions; ``naming``: request ids that name a held key."""
        held = set(decisions.held_requests) | {r for r in naming if r is not None}
        return cls(set(decisions.held_keys), held, set(decisions.cancelled))

    def blocks(self, key: str, request_ids: Sequence[str | None]) -> Decision | None:
        """Whether a delete of ``key`` for ``request_ids`` must not leave, and why."""
        if key in self.held_keys or any(r in self.held_requests for r in request_ids):
            return Decision.HELD
        if request_ids and all(r is not None and r in self.cancelled for r in request_ids):
            return Decision.CANCELLED
        return None

    def add(self, decisions: Decisions, naming: Iterable[str | None] = ()) -> None:
        """Only ever more: a release during a run takes effect in the next run."""
        self.held_keys.update(decisions.held_keys)
        self.held_requests.update(decisions.held_requests)
        self.held_requests.update(r for r in naming if r is not None)
        self.cancelled.update(decisions.cancelled)


@dataclass(slots=True)
class Live:
    """A run's view of the decisions queue: polled every ``poll_s`` seconds by the run.

    :meth:`poll` (in a worker thread) reads what was queued since, widens the
    :class:`Gate` and returns the events for the run's writer to append;
    :meth:`appended` then empties the queue up to what was read.
    ``naming_tonight`` gives the request ids tonight's plan names keys under.
    """

    ledger: Path
    gate: Gate
    clock: Callable[[], datetime]
    naming_tonight: Callable[[Collection[str]], set[str | None]]
    poll_s: float = 2.0
    _db: sqlite3.Connection | None = None

    def poll(self) -> tuple[list[Event], int]:
        from erasure.ledger import open_readonly, pending

        events, upto = pending.take(self.ledger, self._connection(open_readonly))
        if not events:
            return [], upto
        db = self._connection(open_readonly)
        found = standing(db, self.clock(), events)
        naming = requests_naming(db, found.held_keys) | self.naming_tonight(found.held_keys)
        self.gate.add(found, naming)
        return events, upto

    def appended(self, upto: int) -> None:
        from erasure.ledger import pending

        pending.forget(self.ledger, upto)

    def _connection(self, opener: Callable[[Path], sqlite3.Connection]) -> sqlite3.Connection:
        if self._db is None:
            self._db = opener(self.ledger)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def set_aside(
    pending: pl.DataFrame, decisions: Decisions, ledger_naming: Iterable[str | None]
) -> pl.DataFrame:
    """Tonight's pending pairs a decision keeps back: (request_id, key, decision).

    ``pending`` has request_id and key; ``ledger_naming`` are the request ids
    the ledger's pairs name a held key under. A key any held request names
    is held for every request naming it tonight.
    """
    empty = pl.DataFrame(schema={"request_id": pl.String, "key": pl.String, "decision": pl.String})
    if not decisions or not pending.height:
        return empty
    held_keys = pl.Series(sorted(decisions.held_keys), dtype=pl.String).implode()
    tonight = pending.filter(pl.col("key").is_in(held_keys)).get_column("request_id")
    held_requests = set(decisions.held_requests) | set(ledger_naming) | set(tonight.to_list())
    held_requests.discard(None)
    requests = pl.Series(sorted(r for r in held_requests if r), dtype=pl.String).implode()
    keys_of_held = pending.filter(pl.col("request_id").is_in(requests)).get_column("key")
    blocked_keys = pl.concat([held_keys.explode(), keys_of_held]).unique().implode()
    cancelled = pl.Series(sorted(decisions.cancelled), dtype=pl.String).implode()
    return (
        pending.lazy()
        .select("request_id", "key")
        .with_columns(
            decision=pl.when(
                pl.col("key").is_in(blocked_keys) | pl.col("request_id").is_in(requests)
            )
            .then(pl.lit(Decision.HELD.value))
            .when(pl.col("request_id").is_in(cancelled))
            .then(pl.lit(Decision.CANCELLED.value))
        )
        .filter(pl.col("decision").is_not_null())
        .collect()
    )


def plan(
    items: pl.DataFrame,
    finished: pl.DataFrame,
    doubtful: set[str],
    db: sqlite3.Connection | None,
    ledger: Path,
    now: datetime,
) -> Plan:
    """The run's plan less the pairs a standing decision keeps back (counted as such).

    ``db`` is the ledger (None: there is none yet, so no decision either).
    """
    from erasure.run.plan import make_plan

    first = make_plan(items, finished, doubtful)
    if db is None:
        return first
    decisions = read(db, ledger, now)
    if not decisions:
        return first
    aside = set_aside(first.pending, decisions, requests_naming(db, decisions.held_keys))
    if not aside.height:
        return first
    rest = items.join(
        aside.select("request_id", "key"), on=["request_id", "key"], how="anti", nulls_equal=True
    )
    counts = aside.get_column("decision").value_counts()
    by = dict(zip(counts.get_column("decision"), counts.get_column("count"), strict=True))
    return replace(
        make_plan(rest, finished, doubtful),
        held=int(by.get(Decision.HELD.value, 0)),
        cancelled=int(by.get(Decision.CANCELLED.value, 0)),
    )


def live(ledger: Path, work: pl.DataFrame, clock: Callable[[], datetime]) -> Live:
    """The :class:`Live` view for a run whose plan's work is ``work`` (key, request_ids)."""

    def naming_tonight(keys: Collection[str]) -> set[str | None]:
        if not keys or not work.height:
            return set()
        wanted = pl.Series(sorted(keys), dtype=pl.String).implode()
        rids = work.filter(pl.col("key").is_in(wanted)).get_column("request_ids").explode()
        return set(rids.to_list())

    return Live(ledger, Gate(), clock, naming_tonight)
