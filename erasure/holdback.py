"""What a run or sweep holds back because of a person's decision (erasure.decisions).

- :func:`plan`: the run's plan less the pairs a standing hold or
  cancellation names, counted as ``held`` and ``cancelled``;
  :func:`aside_events` records tonight's new ones as such;
- :class:`Gate`: the check before every request, which grows while the run
  runs; :class:`Live`: the run's poll of the decisions queue
  (erasure.ledger.pending) that feeds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.decisions import (
    Decision,
    Decisions,
    _in,
    read,
    requests_naming,
    standing,
    sync,
)
from erasure.ledger import details
from erasure.ledger.events import Event, Kind, Outcome

if TYPE_CHECKING:
    import polars as pl

    from erasure.run.plan import Plan


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
        from erasure.ledger import pending
        from erasure.ledger.read import open_readonly

        events, upto = pending.take(self.ledger, self._connection(open_readonly))
        if not events:
            return [], upto
        db = self._connection(open_readonly)
        found = standing(db, self.clock(), events)
        naming = requests_naming(db, found.held_keys) | self.naming_tonight(found.held_keys)
        self.gate.add(found, naming)
        return events, upto

    def outcomes(self, tonight: Collection[str]) -> list[Event]:
        """:func:`sync`'s outcomes for the ledger's pairs, less those of ``tonight``'s keys.

        The run settles tonight's keys itself (its gate); an outcome written
        here for one of them could overtake the run's own answer.
        """
        from erasure.ledger.read import open_readonly

        db = self._connection(open_readonly)
        return [
            e for e in sync(db, self.clock()) if e.kind is not Kind.OUTCOME or e.key not in tonight
        ]

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
    import polars as pl

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
    import polars as pl  # noqa: F401  (the frames' methods)

    counts = aside.get_column("decision").value_counts()
    by = dict(zip(counts.get_column("decision"), counts.get_column("count"), strict=True))
    return replace(
        make_plan(rest, finished, doubtful),
        held=int(by.get(Decision.HELD.value, 0)),
        cancelled=int(by.get(Decision.CANCELLED.value, 0)),
        aside=first.pending.join(aside, on=["request_id", "key"], nulls_equal=True),
    )


def aside_events(db: sqlite3.Connection, run: int, aside: pl.DataFrame | None) -> list[Event]:
    """For the pairs a run set aside that the ledger does not show so yet: planned, outcome.

    A pair of tonight's file that a decision names is recorded like any
    other (so that every command counts it), its outcome ``held`` or
    ``cancelled`` (run 0: a person's decision); a pair the ledger already
    shows with that outcome adds nothing.
    """
    if aside is None or not aside.height:
        return []
    keys = set(aside.get_column("key").to_list())
    where, args = _in("key", keys)
    known = {
        (r, k): o
        for r, k, o in db.execute(
            f"SELECT request_id, key, outcome FROM pair_state WHERE {where}", args
        )
    }
    out: list[Event] = []
    for row in aside.iter_rows(named=True):
        pair = (row["request_id"], row["key"])
        if known.get(pair, "") == row["decision"]:
            continue
        received = row.get("received_at")
        if pair not in known:
            out.append(
                Event(
                    Kind.PLANNED, run, key=row["key"], request_id=row["request_id"],
                    db_id=row["db_id"], matching=row["matching"],
                    resource_id=row["resource_id"], field_name=row["field_name"],
                    received_at=None if received is None else received.isoformat(),
                )
            )  # fmt: skip
        detail = details.encode(details.DecisionOutcome(row["decision"], run))
        out.append(
            Event(Kind.OUTCOME, 0, key=row["key"], request_id=row["request_id"],
                  outcome=Outcome(row["decision"]), detail=detail)
        )  # fmt: skip
    return out


def live(ledger: Path, work: pl.DataFrame, clock: Callable[[], datetime]) -> Live:
    """The :class:`Live` view for a run whose plan's work is ``work`` (key, request_ids)."""

    def naming_tonight(keys: Collection[str]) -> set[str | None]:
        import polars as pl

        if not keys or not work.height:
            return set()
        wanted = pl.Series(sorted(keys), dtype=pl.String).implode()
        rids = work.filter(pl.col("key").is_in(wanted)).get_column("request_ids").explode()
        return set(rids.to_list())

    return Live(ledger, Gate(), clock, naming_tonight)
