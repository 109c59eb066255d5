"""``erasure extend``: one request's deadline extended within its rule's limit, as an event.

The rule is the one the ledger's last run recorded (the job's before any
run); the extension is counted from the deadline in force, never beyond
the original due day plus the rule's ``extension_max``, and only before the
deadline in force has passed. The event (kind ``extended``, run 0, data in
``detail``) records the original and new due days, when the person was told,
the reason, and who extended it (OS user and host).
"""

from __future__ import annotations

import getpass
import socket
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime

from erasure import deadline_table, deadlines
from erasure.errors import ConfigError, UnknownRequest, UsageError
from erasure.job import Job
from erasure.keys import Role
from erasure.ledger import Event, Kind, Ledger
from erasure.ledger.details import ExtendedDetail, encode


@dataclass(frozen=True, slots=True)
class Extended:
    """What ``extend`` recorded."""

    request_id: str
    original: datetime  # the end of the original due day (the rule's timezone)
    previous: datetime  # the deadline in force before this extension
    new: datetime  # the deadline now in force
    limit: date  # the last due day any extension may reach
    seq: int  # the ``extended`` event


def who() -> str:
    """The OS user and host that made a decision, as the ledger records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _received(db: sqlite3.Connection, request_id: str) -> tuple[bool, str | None]:
    """Whether the ledger knows ``request_id``, and its earliest received_at."""
    known, received = db.execute(
        "SELECT count(*), min(received_at) FROM pair_state WHERE request_id = ?", (request_id,)
    ).fetchone()
    if not known:
        (invalid,) = db.execute(
            "SELECT count(*) FROM invalid_state WHERE request_id = ?", (request_id,)
        ).fetchone()
        return bool(invalid), None
    return True, received


def extend(
    job: Job,
    request_id: str,
    by: str,
    informed_at: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> Extended:
    """Record an extension of ``request_id``'s deadline by ``by``.

    Raises :class:`UsageError` (64) for an unknown request id, a bad
    ``--by``, ``--informed-at`` or an empty reason; :class:`ConfigError`
    (78) when the rule allows no extension, the deadline has passed, the
    extension goes beyond the rule's limit, or the request has no deadline.
    """
    now = now or datetime.now(UTC)
    try:
        duration = deadlines.parse_duration(by, "--by")
    except deadlines.DeadlineError as exc:
        raise UsageError(str(exc)) from None
    if not reason.strip():
        raise UsageError("--reason must say why the deadline is extended")
    keyer = job.keyer(Role.CHAIN, command="erasure extend")
    with Ledger(job.ledger.path, keyer, perms=job.perms) as ledger:
        db = ledger.connection
        ran = db.execute("SELECT 1 FROM run_state LIMIT 1").fetchone()
        rule = deadline_table.rule_of(db) if ran else job.input.deadline
        try:
            informed = deadlines.parse_instant(informed_at, rule)
        except ValueError:
            raise UsageError(
                f"--informed-at {informed_at!r} is not a date or time (ISO 8601, such as "
                "2026-03-10 or 2026-03-10T14:00+03:00)"
            ) from None
        if informed > now:
            raise UsageError("--informed-at is in the future: record when the person was told")
        known, received = _received(db, request_id)
        if not known:
            raise UnknownRequest(request_id)
        if received is None:
            raise ConfigError(
                f"request {request_id!r} has no received date, so no deadline to extend"
            )
        original_day = deadlines.due_day(datetime.fromisoformat(received), rule)
        original = deadlines.end_of(original_day, rule)
        earlier = deadline_table.extensions_of(db).get(request_id, [])
        previous = deadlines.in_force(original, earlier, rule).astimezone(rule.zone)
        new_day = deadlines.extend(original_day, previous.date(), duration, rule, now=now)
        limit = deadlines.extension_limit(original_day, rule)
        assert limit is not None  # extend() refused otherwise
        detail = ExtendedDetail(
            original_due=original_day.isoformat(),
            previous_due=previous.date().isoformat(),
            extended_to=new_day.isoformat(),
            by=str(duration),
            rule=rule.name,
            timezone=rule.timezone,
            informed_at=informed.isoformat(),
            reason=reason.strip(),
            who=who(),
        )
        ledger.append(
            [
                Event(
                    Kind.EXTENDED,
                    0,
                    request_id=request_id,
                    detail=encode(detail),
                )
            ]
        )
        return Extended(
            request_id,
            original,
            previous,
            deadlines.end_of(new_day, rule),
            limit,
            ledger.head_seq,
        )
