"""The decision commands: ``hold``, ``release``, ``holds``, ``cancel``, ``reopen``.

Each records its events in the ledger: directly when it can take the
ledger's lock, else (a run holds it) in the decisions queue that the run
appends within seconds (erasure.ledger.pending). Either way the result
says which. The rules of what a decision means live in erasure.decisions.

Reasons are the user's words: any substring shaped like an email address or
a phone number is replaced (``<email>``, ``<phone>``) before it is kept, so
that a reason typed with an address in it cannot put one in the ledger.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from erasure import decisions
from erasure.decisions import Decisions
from erasure.errors import FileMissing, LedgerBusy, NotMigrated, UnknownRequest, UsageError
from erasure.job import Job, Matching
from erasure.keys import Role
from erasure.ledger.events import Event, Kind

_BEFORE_RECEIVED = " (--before-received cancels one that has not arrived yet)"

_EMAIL = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\s()\-.]{5,}\d")
PHONE_DIGITS = 9  # a run of at least this many digits is masked as a phone; a date has 8
REASON_MAX = 500  # characters of a reason kept


def scrub_reason(text: str) -> str:
    """The reason with anything shaped like an email or a phone number replaced; trimmed."""

    def phone(match: re.Match[str]) -> str:
        digits = sum(c.isdigit() for c in match.group(0))
        return "<phone>" if digits >= PHONE_DIGITS else match.group(0)

    cleaned = _PHONE.sub(phone, _EMAIL.sub("<email>", text.strip()))
    if not cleaned:
        raise UsageError("--reason is empty: say why, in words")
    return cleaned[:REASON_MAX]


def until_of(text: str | None, now: datetime, zone: tzinfo = UTC) -> datetime | None:
    """``--until``: a date (held through the end of that day in ``zone``, the job's
    ``[input] timezone``) or an ISO 8601 instant (read in ``zone`` without an offset)."""
    if text is None:
        return None
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime.combine(day + timedelta(days=1), time(), zone)
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--until {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=zone)


@dataclass(frozen=True, slots=True)
class Selector:
    """What a decision names: a request id, or an identifier (matching and raw value)."""

    request_id: str | None = None
    matching: Matching | None = None
    raw: str | None = None  # never kept: it becomes keys here and goes no further
    db_id: int | None = None
    resource_id: int | None = None

    def words(self) -> str:
        if self.request_id is not None:
            return f"request {self.request_id}"
        return f"the {str(self.matching).replace('_', ' ')} given"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a decision command did."""

    kind: Kind
    events: int  # events recorded (or queued); 0: nothing changed (see ``note``)
    keys: tuple[str, ...]  # the identifier's keys (a selector by identifier)
    requests: tuple[str, ...]  # requests the ledger knows naming it (or the request)
    queued: Path | None = None  # the queue written, when a run held the ledger
    note: str | None = None  # why nothing changed, or what else to know


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _record(job: Job, events: list[Event]) -> Path | None:
    """Append ``events`` under the ledger's lock, or queue them when a run holds it."""
    from erasure.ledger import Ledger
    from erasure.ledger.pending import put

    keyer = job.keyer(Role.CHAIN, command="a decision")
    try:
        with Ledger(job.ledger.path, keyer, perms=job.perms) as ledger:
            ledger.append(events)
            ledger.append(decisions.sync(ledger.connection))  # the pairs it names
            return None
    except LedgerBusy:
        return put(job.ledger.path, events, job.perms)


def _readonly(job: Job, request_id: str | None = None) -> sqlite3.Connection:
    """The ledger, read-only; a request id named when there is none yet is unknown (64)."""
    from erasure import ledger as ledger_mod

    try:
        db = ledger_mod.open_readonly(job.ledger.path)
    except FileMissing:
        if request_id is None:
            raise
        raise UnknownRequest(request_id) from None
    except NotMigrated:  # a decision writes: it migrates, as opening for writing does
        from erasure.migrating import migrate_job

        migrate_job(job, command="a decision")
        db = ledger_mod.open_readonly(job.ledger.path)
    keyer = job.keyer(Role.CHAIN, command="a decision")
    ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
    return db


def _resolve(job: Job, db: sqlite3.Connection, sel: Selector) -> tuple[list[str], list[str]]:
    """The selector's keys and the requests the ledger knows naming it (64 when unknown)."""
    if sel.request_id is not None:
        if not decisions.known_request(db, sel.request_id):
            raise UnknownRequest(sel.request_id)
        return [], [sel.request_id]
    keys = _keys(job, sel)
    naming = sorted(r for r in decisions.requests_naming(db, keys) if r is not None)
    return keys, naming


def _keys(job: Job, sel: Selector) -> list[str]:
    from erasure.lookup import keys_for

    assert sel.matching is not None and sel.raw is not None
    keyer = job.keyer(Role.IDENTIFIER, command="a decision")
    return keys_for(job, keyer, sel.matching, sel.raw, db_id=sel.db_id, resource_id=sel.resource_id)


def hold(
    job: Job, sel: Selector, reason: str, until: str | None = None, *, now: datetime | None = None
) -> Recorded:
    """A legal hold on a request, or on every request naming an identifier."""
    at = _now(now)
    words = scrub_reason(reason)
    end = until_of(until, at, job.input.deadline.zone)
    if end is not None and end <= at:
        raise UsageError(f"--until {until} has passed already: a hold must end in the future")
    naming: list[str] = []
    if sel.request_id is None and not job.ledger.path.exists():
        keys = _keys(job, sel)  # a hold before the first run: the ledger starts here
    else:
        with closing(_readonly(job, sel.request_id)) as db:
            keys, naming = _resolve(job, db, sel)
    by = decisions.who()
    extra: dict[str, object] = {"selector": "request" if sel.request_id else str(sel.matching)}
    events = [
        decisions.event(
            Kind.HOLD, request_id=sel.request_id, key=None, reason=words, now=at, by=by,
            until=end, extra=extra,
        )
    ] if sel.request_id is not None else [
        decisions.event(
            Kind.HOLD, request_id=None, key=k, reason=words, now=at, by=by, until=end,
            extra=extra,
        )
        for k in keys
    ]  # fmt: skip
    queued = _record(job, events)
    note = None
    if sel.request_id is None and not naming:
        note = "no request in the ledger names it yet: the hold applies to any that will"
    return Recorded(Kind.HOLD, len(events), tuple(keys), tuple(naming), queued, note)


def release(job: Job, sel: Selector, reason: str, *, now: datetime | None = None) -> Recorded:
    """End the standing holds of the selector (its pairs are open again: the next run sends)."""
    at = _now(now)
    words = scrub_reason(reason)
    with closing(_readonly(job, sel.request_id)) as db:
        keys, naming = _resolve(job, db, sel)
        standing = decisions.read(db, job.ledger.path, at)
    held = [
        h
        for h in standing.holds
        if (sel.request_id is not None and h.request_id == sel.request_id)
        or (h.key is not None and h.key in keys)
    ]
    if not held:
        raise UsageError(f"no standing hold on {sel.words()}: nothing to release")
    by = decisions.who()
    events = [
        decisions.event(Kind.RELEASE, request_id=h.request_id, key=h.key, reason=words, now=at,
                        by=by)
        for h in {(h.request_id, h.key): h for h in held}.values()
    ]  # fmt: skip
    queued = _record(job, events)
    return Recorded(Kind.RELEASE, len(events), tuple(keys), tuple(naming), queued)


def _needs_request_ids(job: Job, command: str) -> None:
    if job.input.request_id_column is None:
        raise UsageError(
            f"{command} selects a request by its id, and this job's input has no request id "
            "column ([input] request_id_column): without one every pair belongs to no request, "
            "so there is nothing to cancel; set the column, or hold the identifier instead"
        )


def cancel(
    job: Job,
    request_id: str,
    reason: str,
    *,
    before_received: bool = False,
    now: datetime | None = None,
) -> Recorded:
    """Withdraw a request: its open pairs end ``cancelled``, never sent, also from later files."""
    at = _now(now)
    _needs_request_ids(job, "cancel")
    words = scrub_reason(reason)
    try:
        db = _readonly(job)
    except FileMissing:
        if not before_received:
            raise UnknownRequest(request_id, _BEFORE_RECEIVED) from None
        db = None
    if db is not None:
        with closing(db):
            known = decisions.known_request(db, request_id)
            if not known and not before_received:
                raise UnknownRequest(request_id, _BEFORE_RECEIVED)
            standing = decisions.read(db, job.ledger.path, at)
            if request_id in standing.cancelled:
                note = f"request {request_id} is cancelled already: nothing changed"
                return Recorded(Kind.CANCEL, 0, (), (request_id,), note=note)
            if known:
                pairs, left = _pairs(db, request_id)
                if pairs and not left:
                    return Recorded(
                        Kind.CANCEL, 0, (), (request_id,),
                        note=f"request {request_id} is finished (every identifier has a final "
                        "outcome): cancelling changes nothing, and nothing was recorded",
                    )  # fmt: skip
    event = decisions.event(
        Kind.CANCEL, request_id=request_id, key=None, reason=words, now=at, by=decisions.who(),
        extra={"before_received": before_received},
    )  # fmt: skip
    queued = _record(job, [event])
    return Recorded(Kind.CANCEL, 1, (), (request_id,), queued)


def _pairs(db: sqlite3.Connection, request_id: str) -> tuple[int, int]:
    """The request's pairs, and those with no final outcome (erased, not_found, rejected)."""
    pairs, left = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE coalesce(outcome, '') "
        "NOT IN ('erased', 'not_found', 'rejected')) FROM pair_state WHERE request_id = ?",
        (request_id,),
    ).fetchone()
    return int(pairs), int(left or 0)


def reopen(job: Job, request_id: str, reason: str, *, now: datetime | None = None) -> Recorded:
    """Undo a cancellation: the request's open pairs are sent by the next run."""
    at = _now(now)
    _needs_request_ids(job, "reopen")
    words = scrub_reason(reason)
    with closing(_readonly(job, request_id)) as db:
        standing = decisions.read(db, job.ledger.path, at)
    if request_id not in standing.cancelled:
        raise UsageError(f"request {request_id!r} is not cancelled: nothing to reopen")
    event = decisions.event(
        Kind.REOPEN, request_id=request_id, key=None, reason=words, now=at, by=decisions.who()
    )
    queued = _record(job, [event])
    return Recorded(Kind.REOPEN, 1, (), (request_id,), queued)


def holds(job: Job, *, now: datetime | None = None) -> Decisions:
    """The holds and cancellations standing now (the queued ones too)."""
    from erasure import ledger as ledger_mod

    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        return decisions.read(db, job.ledger.path, _now(now))
