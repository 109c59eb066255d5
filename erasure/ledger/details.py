"""What each event kind's ``detail`` holds, declared: one frozen dataclass per kind.

An event's ``detail`` column is JSON text (or NULL). Its shape used to live
only in the writers' ``json.dumps`` calls and the readers' ``json_extract``
paths, so a renamed key read as NULL and nothing noticed. Here each kind
declares its fields, with their types; optional ones have defaults.

Writers construct the dataclass and call :func:`encode`, so they cannot
write a key that is not declared. Readers may call :func:`decode`;
``erasure verify`` decodes every event's detail by its kind and names the
first that does not fit. ``tests/test_event_details.py`` holds every
``$.field`` path in the SQL to these declarations.

The rules of :func:`decode`, chosen so that every ledger that exists reads:

- a declared field must have its declared type (an integer is never a
  string, a bool never an integer); a required field must be present;
- a field that an earlier release did not write yet (or wrote and no
  longer writes) has a default, so that its ledgers decode;
- a key that is not declared is ignored, never an error: a ledger written
  by a later release (or an earlier one's dropped key) still verifies.
  Only the declared fields are typed, and only they are read.
- a kind that carries no detail (``planned``, ``sent``, ...) must have
  none; ``attempt`` and a run's ``outcome`` have none either (no release
  ever wrote words there: the run's words go to its log).

:func:`encode` writes what the writers wrote before these types: JSON with
sorted keys and json.dumps' default separators, non-ASCII as is; a field
declared with :func:`omitted` is left out while it holds its default (as
the writers left out, say, a hold's ``until`` when it has none).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from erasure.ledger.events import Kind
from erasure.ledger.typedjson import DetailError, field_names, from_json, loads, omitted, to_json

__all__ = ["KIND_OF", "TYPES", "Detail", "DetailError", "build", "decode", "encode"]
__all__ += ["MAY_BE_NULL", "field_names", "first_misfit", "loads", "omitted"]

T = TypeVar("T")


# ---------------------------------------------------------------- the ledger's own


@dataclass(frozen=True, slots=True)
class CreatedDetail:
    """Event 1: the meta table's values, so that the chain covers them."""

    schema: str
    normalisation: str
    derivation: str
    key_fingerprint: str
    # the canonical encoding's version (erasure.ledger.events.CANONICAL); absent: "1"
    canonical: str | None = omitted()


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """The archive file an ``archived`` record cites, and the chain's heads around it."""

    file: str
    first_seq: int
    prev_link: str
    prev_plain: str
    head_seq: int
    head_link: str
    plain_head: str
    events: int
    runs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ArchivedDetail:
    """The events before the ledger's first went to an archive file (erasure archive)."""

    archive: ArchiveInfo
    before: str  # the cutoff date, ISO 8601
    meta: dict[str, str]
    state_sha256: str


# ---------------------------------------------------------------- runs


@dataclass(frozen=True, slots=True)
class CarriedInput:
    """An earlier input file read again by a run: its open pairs joined the plan."""

    path: str
    sha256: str
    pairs: int


@dataclass(frozen=True, slots=True)
class OpenElsewhere:
    """An earlier input, open pairs, gone or changed: carry.Elsewhere; status' open_elsewhere."""

    file: str  # its name
    path: str  # where its last run read it
    sha256: str
    open: int  # its pairs with no final outcome
    state: str  # gone | changed (erasure.ledger.inputs.FileState)


@dataclass(frozen=True, slots=True)
class RunInput:
    """The file a run read: a run's input (with its accounting) or a sweep's export."""

    path: str
    sha256: str
    rows: int
    invalid: int | None = omitted()  # a run's
    account: dict[str, Any] | None = omitted()  # a run's (erasure.accounting.Account)
    carried: tuple[CarriedInput, ...] | None = omitted()  # a run's (0.1.0 wrote none)
    open_elsewhere: tuple[OpenElsewhere, ...] | None = omitted()  # a run's (0.1.0 wrote none)
    rejected: int | None = omitted()  # a sweep's

    @classmethod
    def of(cls, info: dict[str, Any]) -> RunInput:
        """From the dict the run's callers keep (erasure.app, erasure.after.sweep)."""
        return build(RunInput, info)


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """What a run planned."""

    pairs: int
    keys: int
    already_done: int
    in_doubt: int
    held: int = omitted(0)  # kept back by a person's decision (named only when any)
    cancelled: int = omitted(0)


@dataclass(frozen=True, slots=True)
class RunStartedDetail:
    """A run's (or a sweep's) start: its settings (no secrets), input and plan."""

    settings: dict[str, Any]  # erasure.job.Job.settings()
    input: RunInput | None  # None: a runner driven without an input file (tests)
    plan: PlanCounts
    command: str | None = omitted()  # absent: ``run``; another command's run names itself


@dataclass(frozen=True, slots=True)
class RunFinishedDetail:
    """A run's end: its counts and exit code (erasure.run.summary.Summary.as_dict)."""

    run: int
    planned_pairs: int
    planned_keys: int
    already_done: int
    outcomes: dict[str, int]
    pending: int
    requests: int
    in_doubt: int
    invalid: int
    withdrawn: int
    unrecorded: int
    duration_s: float
    stop_reason: str | None
    preflight: str | None
    error: str | None
    exit_code: int
    suppressed: int = 0  # these three: 0.1.0 wrote none
    suppression_failed: int = 0
    open_elsewhere: int = 0
    held_back: int = omitted(0)
    set_aside: int = omitted(0)


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """An ``outcome`` of a person's decision (run 0): held, cancelled, or open again.

    A run's own outcome carries no detail.
    """

    decision: Literal["held", "cancelled", "open"]
    run: int | None = omitted()  # the run that kept it back, when one did


# ---------------------------------------------------------------- the input's records


@dataclass(frozen=True, slots=True)
class InvalidDetail:
    """An unusable input cell, or a row with no identifier; never the cell's value."""

    input: str  # the input file's SHA-256
    row: int | None
    column: str | None  # None: no_identifier
    reason: str
    words: str


@dataclass(frozen=True, slots=True)
class ResolvedDetail:
    """A later input brought a usable value: the ``invalid`` events it resolves."""

    input: str
    row: int
    column: str | None
    resolves: tuple[int, ...]  # seq of the invalid events


@dataclass(frozen=True, slots=True)
class ReappearedDetail:
    """A profile came back after a finished erasure (erasure sweep)."""

    match: str  # erasure.after.sweep.MatchKind
    decision: str  # erasure.after.sweep.Decision
    first_erased_seq: int
    delete_key: str | None = omitted()  # only when decided ``deleted``


# ---------------------------------------------------------------- a person's decisions


@dataclass(frozen=True, slots=True)
class DecisionDetail:
    """What every decision records (erasure.decisions): never an identifier."""

    id: str  # the decision's own id (the decisions queue knows it by it)
    reason: str  # scrubbed: no identifier in it
    who: str  # the OS user and host, or ``erasure`` for a hold's end
    at: str  # when it was made, ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class HoldDetail(DecisionDetail):
    """A legal hold (erasure hold)."""

    selector: str | None = omitted()  # "request", or the identifier's matching
    until: str | None = omitted()


@dataclass(frozen=True, slots=True)
class ReleaseDetail(DecisionDetail):
    """The end of the holds of a selector (erasure release, or a hold's end passed)."""

    expired: bool = omitted(False)  # ended by its ``until``, not by a person


@dataclass(frozen=True, slots=True)
class CancelDetail(DecisionDetail):
    """A request withdrawn (erasure cancel)."""

    before_received: bool = False


@dataclass(frozen=True, slots=True)
class ReopenDetail(DecisionDetail):
    """A cancellation undone (erasure reopen)."""


@dataclass(frozen=True, slots=True)
class ExtendedDetail:
    """A request's deadline extended (erasure extend)."""

    original_due: str
    previous_due: str
    extended_to: str
    by: str
    rule: str
    timezone: str
    informed_at: str
    reason: str
    who: str


@dataclass(frozen=True, slots=True)
class PolicyDetail:
    """The ``[approval]`` policy in force (erasure.approval.policy_of)."""

    policy: dict[str, Any]
    changed_by_plan: bool


@dataclass(frozen=True, slots=True)
class ApprovalDetail:
    """A run or sweep ran under an approved plan."""

    command: str
    plan_sha256: str
    made_at: str
    expires_at: str
    planner: tuple[str, ...]
    approvers: tuple[str, ...]
    pairs: int
    run: int | None = None  # the run it approves; approvals of the first weeks named none


# ---------------------------------------------------------------- after the run


@dataclass(frozen=True, slots=True)
class SuppressionDetail:
    """A value sent to an Altcraft suppression list, or a failure to."""

    list: int
    status: Literal["added", "failed", "check_failed"]
    reason: str | None = omitted()  # when it failed
    batch: dict[str, int] | None = omitted()  # the service's counts, when it gave them


@dataclass(frozen=True, slots=True)
class NoticeDetail:
    """A signed notice: queued (with its body), then each delivery's answer."""

    status: Literal["queued", "delivered", "failed"]
    idempotency_key: str
    body: str | None = omitted()  # queued
    attempt: int | None = omitted()  # delivered, failed
    reason: str | None = omitted()
    queued_seq: int | None = omitted()


Detail = (
    CreatedDetail
    | ArchivedDetail
    | RunStartedDetail
    | RunFinishedDetail
    | DecisionOutcome
    | InvalidDetail
    | ResolvedDetail
    | ReappearedDetail
    | HoldDetail
    | ReleaseDetail
    | CancelDetail
    | ReopenDetail
    | ExtendedDetail
    | PolicyDetail
    | ApprovalDetail
    | SuppressionDetail
    | NoticeDetail
)

# Each kind's detail type; None: the kind carries no detail.
TYPES: dict[Kind, type[Any] | None] = {
    Kind.CREATED: CreatedDetail,
    Kind.RUN_STARTED: RunStartedDetail,
    Kind.PLANNED: None,
    Kind.SENT: None,
    Kind.WITHDRAWN: None,
    Kind.ATTEMPT: None,
    Kind.OUTCOME: DecisionOutcome,
    Kind.RUN_FINISHED: RunFinishedDetail,
    Kind.INVALID: InvalidDetail,
    Kind.RESOLVED: ResolvedDetail,
    Kind.REAPPEARED: ReappearedDetail,
    Kind.ARCHIVED: ArchivedDetail,
    Kind.EXTENDED: ExtendedDetail,
    Kind.SUPPRESSION: SuppressionDetail,
    Kind.NOTICE: NoticeDetail,
    Kind.HOLD: HoldDetail,
    Kind.RELEASE: ReleaseDetail,
    Kind.CANCEL: CancelDetail,
    Kind.REOPEN: ReopenDetail,
    Kind.APPROVAL: ApprovalDetail,
    Kind.POLICY: PolicyDetail,
}
# Kinds whose detail may also be NULL: a run's outcome (a decision's carries one).
MAY_BE_NULL: frozenset[Kind] = frozenset({Kind.OUTCOME})
KIND_OF: dict[type[Any], Kind] = {t: k for k, t in TYPES.items() if t is not None}
_DECISIONS: dict[Kind, type[Any]] = {
    Kind.HOLD: HoldDetail,
    Kind.RELEASE: ReleaseDetail,
    Kind.CANCEL: CancelDetail,
    Kind.REOPEN: ReopenDetail,
}


def decision(kind: Kind, **fields: Any) -> Detail:
    """A decision's detail by its kind (hold, release, cancel, reopen)."""
    return _DECISIONS[kind](**fields)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- encode, decode


def encode(detail: Detail) -> str:
    """The detail's JSON text: sorted keys, json.dumps' separators, non-ASCII as is.

    The fields are checked against their declared types on the way: a
    writer can write nothing that :func:`decode` would refuse.
    """
    return json.dumps(to_json(type(detail), detail), sort_keys=True, ensure_ascii=False)


def decode(kind: Kind | str, text: str | None) -> Detail | None:
    """``text`` read as kind ``kind``'s detail; :class:`DetailError` when it does not fit."""
    try:
        kind = Kind(kind)
    except ValueError:
        raise DetailError(f"{kind!r} is not an event kind this release knows") from None
    tp = TYPES[kind]
    if text is None:
        if tp is None or kind in MAY_BE_NULL:
            return None
        raise DetailError(f"a {kind} event must carry a detail")
    if tp is None:
        raise DetailError(f"a {kind} event carries no detail")
    try:
        data = json.loads(text)
    except ValueError:
        raise DetailError(f"the detail of a {kind} event is not JSON") from None
    return from_json(tp, data)  # type: ignore[no-any-return]


def build(cls: type[T], data: dict[str, Any]) -> T:
    """A declared type from a writer's dict: strict, an undeclared key is an error."""
    made: T = from_json(cls, data, strict=True)
    return made


def first_misfit(db: sqlite3.Connection, after: int = 0) -> str | None:
    """The first event after seq ``after`` whose detail does not fit its kind, in words.

    ``erasure verify`` calls it over the events it checks: one pass in seq
    order; only the events with a detail, or of a kind that needs one,
    reach Python (a run's three events per delete carry none).
    """
    cursor = db.execute(
        "SELECT seq, kind, run, detail FROM events "
        f"WHERE seq > ? AND (detail IS NOT NULL OR kind IN ({_NEED_DETAIL})) ORDER BY seq",
        (after,),
    )
    while rows := cursor.fetchmany(10_000):
        for seq, kind, run, detail in rows:
            try:
                decode(kind, detail)
            except DetailError as exc:
                return f"event {seq} ({kind}, run {run}) has a detail that does not fit: {exc}"
    return None


# the kinds whose events must carry a detail
_NEED_DETAIL = ", ".join(
    f"'{k.value}'" for k, t in TYPES.items() if t is not None and k not in MAY_BE_NULL
)
