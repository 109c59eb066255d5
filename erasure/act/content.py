"""What an act says, read from the ledger: the destructions in scope and the fields of [act].

Read-only over the events themselves (kind ``outcome``), so the act never
rests on derived state: one row per ``erased`` outcome event in scope (a
sweep's re-delete after a restore is a destruction too, and marked so), and
the ``not_found`` outcomes of runs (never of a sweep, whose ``not_found``
means the profile was already gone) listed apart. Never an identifier: a
row names its request id, its time and its ledger event.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from erasure import deadlines
from erasure.errors import ConfigError, UsageError
from erasure.job import Act, Job
from erasure.ledger import read as ledger_read
from erasure.receipts.canonical import format_head

REQUIRED = ("operator", "processor", "system", "categories", "commission")


@dataclass(frozen=True, slots=True)
class Fields:
    """``[act]`` with every required field present."""

    operator: str
    processor: str
    system: str
    categories: tuple[str, ...]
    commission: tuple[str, ...]
    language: str
    article: str | None


def fields(job: Job) -> Fields:
    """``[act]``'s fields; ConfigError (78) naming the first one missing."""
    act = job.act or Act()
    for name in REQUIRED:
        if not getattr(act, name):
            raise ConfigError(
                f"job file: act.{name} is required by erasure act"
                + ("" if job.act else " (the job has no [act] section)")
            )
    assert act.operator and act.processor and act.system
    assert act.categories and act.commission
    return Fields(
        act.operator,
        act.processor,
        act.system,
        act.categories,
        act.commission,
        act.language,
        act.article,
    )


@dataclass(frozen=True, slots=True)
class Row:
    """One outcome event in scope."""

    seq: int  # the ledger event
    run: int
    request_id: str | None
    at: datetime  # when the service answered (in the act's timezone)
    kind: str  # erased | sweep | not_found


@dataclass(frozen=True, slots=True)
class Scope:
    """One run, or the days from ``start`` to ``end`` inclusive in the job's timezone."""

    run: int | None = None
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True, slots=True)
class Content:
    fields: Fields
    scope: Scope
    timezone: str
    made_at: datetime  # the act's moment, in its timezone
    destroyed: tuple[Row, ...]  # erased and sweep rows, oldest first
    nothing_found: tuple[Row, ...]
    head: str  # the keyed chain's head, SEQ:LINK (as erasure verify prints it)
    plain_head: str | None  # the plain SHA-256 chain's head, when the ledger keeps it
    # (list id, addresses) of [suppress]: the destroyed profiles' addresses kept on a list
    suppressed: tuple[tuple[int, int], ...] = ()

    @property
    def subjects(self) -> tuple[str | None, ...]:
        """The request ids of the destroyed rows, in first-seen order."""
        return tuple(dict.fromkeys(r.request_id for r in self.destroyed))


def scope(run: int | None, start: str | None, end: str | None) -> Scope:
    """The command line's scope; UsageError (64) for a bad one."""
    if run is not None:
        if start is not None or end is not None:
            raise UsageError("give --run N or --from DATE --to DATE, not both")
        if run < 1:
            raise UsageError(f"--run {run}: runs are numbered from 1")
        return Scope(run=run)
    if start is None or end is None:
        raise UsageError("give --run N, or both --from DATE and --to DATE")
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise UsageError(
            f"--from {start} --to {end}: dates are YYYY-MM-DD (days in [input] timezone)"
        ) from None
    if first > last:
        raise UsageError(f"--from {start} is after --to {end}")
    return Scope(start=first, end=last)


_OUTCOMES = """
    SELECT seq, run, request_id, at, outcome FROM events
    WHERE kind = 'outcome' AND outcome IN ('erased', 'not_found') AND {where}
    ORDER BY seq
"""


def read(db: sqlite3.Connection, job: Job, where: Scope, *, now: datetime) -> Content:
    """The act's content for ``where``; UsageError (64) when the scope holds nothing."""
    act_fields = fields(job)
    rule = job.input.deadline  # the act's days and times are in [input] timezone
    tz = rule.zone
    if where.run is not None:
        known = db.execute(
            "SELECT 1 FROM events WHERE kind = 'run_started' AND run = ?", (where.run,)
        ).fetchone()
        if known is None:
            raise UsageError(f"--run {where.run}: the ledger has no such run")
        found = db.execute(_OUTCOMES.format(where="run = ?"), (where.run,)).fetchall()
        described = f"run {where.run}"
    else:
        assert where.start is not None and where.end is not None
        low = datetime.combine(where.start, time.min, tzinfo=tz).astimezone(UTC)
        high = datetime.combine(where.end + timedelta(days=1), time.min, tzinfo=tz)
        found = db.execute(
            _OUTCOMES.format(where="at >= ? AND at < ?"),
            (low.isoformat(timespec="microseconds"), high.astimezone(UTC).isoformat()),
        ).fetchall()
        described = f"{where.start.isoformat()} to {where.end.isoformat()}"
    sweeps = {
        int(run)
        for (run,) in db.execute(
            "SELECT run FROM events WHERE kind = 'run_started' "
            "AND json_extract(detail, '$.command') = 'sweep'"
        )
    }
    destroyed: list[Row] = []
    missing: list[Row] = []
    for seq, run, request_id, at, outcome in found:
        moment = datetime.fromisoformat(at).astimezone(tz)
        if outcome == "erased":
            kind = "sweep" if run in sweeps else "erased"
            destroyed.append(Row(int(seq), int(run), request_id, moment, kind))
        elif run not in sweeps:
            missing.append(Row(int(seq), int(run), request_id, moment, "not_found"))
    suppressed = _suppressed(db, [r.seq for r in (*destroyed, *missing)])
    if not destroyed and not missing:
        raise UsageError(f"nothing was destroyed or found missing in {described}: no act written")
    head = ledger_read.head(db)
    assert head is not None  # there are events
    plain = ledger_read.plain_head(db)
    return Content(
        fields=act_fields,
        scope=where,
        timezone=rule.timezone,
        made_at=now.astimezone(tz),
        destroyed=tuple(destroyed),
        nothing_found=tuple(missing),
        head=format_head(*head),
        plain_head=format_head(*plain) if plain else None,
        suppressed=suppressed,
    )


def _suppressed(db: sqlite3.Connection, seqs: list[int]) -> tuple[tuple[int, int], ...]:
    """Per suppression list, how many of these outcomes' keys it keeps (erasure.after.suppress).

    The act must say so: the address itself is kept at Altcraft, not destroyed.
    """
    if not seqs:
        return ()
    rows = db.execute(
        "SELECT json_extract(detail, '$.list'), count(DISTINCT key) FROM events "
        "WHERE kind = 'suppression' AND json_extract(detail, '$.status') = 'added' "
        "AND key IN (SELECT key FROM events WHERE seq IN (SELECT value FROM json_each(?))) "
        "GROUP BY 1 ORDER BY 1",
        (json.dumps(seqs),),
    ).fetchall()
    return tuple((int(lst), int(n)) for lst, n in rows)


def shown(moment: datetime) -> str:
    """A moment as the act shows it: local time to the second, with its offset."""
    return deadlines.show(moment)
