"""What the ledger records: event kinds, outcomes, the event tuple and its canonical bytes.

Pure: no I/O. Both chains (the keyed HMAC chain and the plain SHA-256
chain) cover each event's canonical bytes, in the encoding the ledger's
meta names (:data:`CANONICAL`, chosen by :func:`canonical_of`). What an
event's ``detail`` holds is declared in :mod:`erasure.ledger.details`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from erasure.errors import LedgerMismatch
from erasure.job import Matching

SCHEMA_VERSION = "1"  # the events' schema; the derived state has its own (erasure.ledger.state)
GENESIS = "0" * 64  # the keyed link before the first event


class Kind(enum.StrEnum):
    """Event kinds, a closed set."""

    CREATED = "created"  # seq 1: the meta values, so that the chain covers them
    RUN_STARTED = "run_started"  # settings (no secrets), input hash and rows, plan
    PLANNED = "planned"  # a (request id, key) pair this run means to finish
    SENT = "sent"  # a request for a key is about to leave (committed first)
    WITHDRAWN = "withdrawn"  # a committed "sent" whose request never left (clean stop)
    ATTEMPT = "attempt"  # a non-final answer or transport failure of one request
    OUTCOME = "outcome"  # the outcome of a (request id, key) pair in this run
    RUN_FINISHED = "run_finished"  # exit code and counts
    INVALID = "invalid"  # an unusable input cell, or a row with no identifier (issue 12)
    RESOLVED = "resolved"  # a later input brought a usable value for invalid records
    REAPPEARED = "reappeared"  # a profile came back after a finished erasure (sweep)
    ARCHIVED = "archived"  # the events before this ledger's first moved to an archive file
    # a request's deadline extended (erasure extend); detail: original and new due day, by,
    # informed_at, reason, who
    EXTENDED = "extended"
    # An erased (or not found) person's email or phone sent to an Altcraft suppression
    # list, or a failure to: detail {"list", "status": added|failed|check_failed, ...}
    SUPPRESSION = "suppression"
    # A signed notice of a request's status: detail {"status": queued|delivered|failed,
    # "idempotency_key", ...} (erasure.after.notify)
    NOTICE = "notice"
    # A person's decisions (erasure.decisions): request_id or key is the selector,
    # the detail holds id, reason, who, at (and a hold's until); never an identifier.
    HOLD = "hold"  # a legal hold: the selected pairs are never sent while it stands
    RELEASE = "release"  # ends the open holds of the same selector
    CANCEL = "cancel"  # a request withdrawn: its open pairs end cancelled (final)
    REOPEN = "reopen"  # ends the open cancellations of the same request
    APPROVAL = "approval"  # a run or sweep ran under an approved plan (erasure.approval)
    POLICY = "policy"  # the [approval] policy in force, recorded when first used or changed


class Outcome(enum.StrEnum):
    """What became of one identifier for one request: a closed set."""

    # HTTP 2xx with error 0: the service erased the profile.
    ERASED = "erased"
    # A configured not_found code: nothing to erase (already gone, or never there).
    NOT_FOUND = "not_found"
    # Any other refusal of this identifier: a person must look (bad data, a code).
    REJECTED = "rejected"
    # Transient failures used every attempt of a run; the next run retries.
    FAILED = "failed"
    # Never finished: no outcome recorded yet (not stored as an event).
    PENDING = "pending"
    # A legal hold keeps it from being sent (erasure hold); open again when released.
    HELD = "held"
    # Its request was withdrawn before it finished (erasure cancel): final, never sent.
    CANCELLED = "cancelled"


FINAL: frozenset[Outcome] = frozenset({Outcome.ERASED, Outcome.NOT_FOUND, Outcome.REJECTED})


class Event(NamedTuple):
    """One ledger event; ``seq``, ``at`` and ``link`` are set when appended.

    A named tuple rather than a frozen dataclass: three are made per
    identifier on the hot path, and a tuple is what the chain and the
    INSERT need anyway.
    """

    kind: Kind
    run: int
    key: str | None = None
    request_id: str | None = None
    db_id: int | None = None
    matching: Matching | None = None
    resource_id: int | None = None
    field_name: str | None = None
    received_at: str | None = None
    attempt: int | None = None
    outcome: Outcome | None = None
    in_doubt: int | None = None
    profile_id: str | None = None
    error_code: int | None = None
    error_text: str | None = None
    http_status: int | None = None
    detail: str | None = None


EVENT_FIELDS = Event._fields
COLUMNS = ("seq", "at", *EVENT_FIELDS, "link")  # the events table's columns, in order
DETAIL = EVENT_FIELDS.index("detail")


Canonical = Callable[[int, str, Sequence[Any]], bytes]
"""An encoding of the bytes a chain link covers: (seq, at, the event's fields) -> bytes."""


def canonical_v1(seq: int, at: str, values: Sequence[Any]) -> bytes:
    """Version 1 of the bytes a chain link covers: the event's position, time and content.

    Compact JSON, UTF-8, nothing escaped but what JSON requires: the bytes
    of ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``,
    which ``tests/test_ledger.py`` holds orjson to. orjson makes them in a
    twentieth of the time, and three events are chained per delete.
    """
    return orjson.dumps([seq, at, *values])


# The canonical encodings this release reads, by the version a ledger's meta names
# (``canonical``; a ledger without it is version 1). New ledgers get CANONICAL_VERSION.
# A new version is added here, never changed: every existing ledger verifies by its own.
CANONICAL: dict[str, Canonical] = {"1": canonical_v1}
CANONICAL_VERSION = "1"


def canonical_of(meta: Mapping[str, str], where: object = "the ledger") -> Canonical:
    """The canonical encoding a ledger's meta names; refused (78) when this release lacks it."""
    version = meta.get("canonical", "1")
    found = CANONICAL.get(version)
    if found is None:
        raise LedgerMismatch(
            f"{where} was written by a newer release (canonical encoding {version!r}; this "
            f"release knows {', '.join(sorted(CANONICAL))}): use that release or a later one"
        )
    return found


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds (an event's ``at``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
