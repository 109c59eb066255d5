"""``erasure status``'s result, typed and frozen: the one declaration of ``status --json``.

Scripts read ``status --json``, so its keys and the shape of each value are
a contract. Each object in it is a frozen dataclass here, one field per key
and its type in JSON's terms: ``int``, ``str``, ``X | None`` (null),
a nested dataclass (an object), ``tuple[X, ...]`` (a list),
``Mapping[str, int]`` (an object of counts), :data:`JsonObject` (an object
a run recorded as it was, such as its settings). :meth:`LedgerStatus.as_json`
gives the object; :func:`reference` prints the README's table of its keys,
and ``tests/test_status_schema.py`` checks a real ``erasure status --json``
and the README against these declarations. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from erasure.accounting import LedgerAccount
from erasure.ledger.details import OpenElsewhere
from erasure.ledger.typedjson import to_json  # what a stopped run records, reported as is

__all__ = [
    "ChainHead",
    "JsonObject",
    "LedgerStatus",
    "OpenElsewhere",
    "Reappeared",
    "RunNow",
    "RunRecord",
    "SafeToDelete",
    "SweepDeletes",
    "reference",
]

JsonObject = Mapping[str, Any]  # recorded by a run as it was (its plan, its settings)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as ``status`` (``last_run``) and every report show it (erasure.ledger.read.runs)."""

    run: int
    started_at: str  # ISO 8601
    finished_at: str | None  # None: still running, or killed
    exit_code: int | None
    input_sha256: str | None
    input_rows: int | None
    plan: JsonObject | None  # the plan's counts, as the run recorded them
    settings: JsonObject | None  # the settings the run recorded
    outcomes: Mapping[str, int] | None  # the service's answers, by outcome
    stop_reason: str | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return to_json(type(self), self)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class RunNow:
    """The run holding the ledger now."""

    run: int
    since: str  # ISO 8601: when it started
    in_flight: int  # deletes sent and not answered yet (not in doubt: it is waiting)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last event: its seq and keyed link (``erasure verify --from SEQ:LINK``)."""

    seq: int
    link: str


@dataclass(frozen=True, slots=True)
class SweepDeletes:
    """A sweep's deletes, apart from the pairs: ``deletes`` = erased + not_found + open."""

    deletes: int
    erased: int
    not_found: int
    open: int


@dataclass(frozen=True, slots=True)
class SafeToDelete:
    """An earlier input file still on disk whose every pair is final."""

    file: str
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Reappeared:
    """Profiles a sweep found again after their erasure, by match and where they stand."""

    profiles: int
    by_profile_id: int
    by_identifier: int
    erased_again: int  # erasure.pair_rows.CameBack, one count each
    delete_open: int
    waiting: int


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """``erasure status``: pairs by outcome, requests and why, the last run, the chain's head."""

    total: int  # (request, identifier) pairs
    erased: int  # pairs, one count per outcome (erasure.ledger.Outcome)
    not_found: int
    rejected: int
    failed: int
    pending: int
    held: int
    cancelled: int
    in_doubt: int  # pairs whose request may have reached the service unanswered
    invalid: int  # unresolved invalid records
    overdue: int  # pairs open past their deadline
    requests: int
    incomplete_reasons: Mapping[str, int]  # requests by reason, every reason of the partition
    deadline_unknown: int  # requests whose every received date is unusable
    sweep_deletes: SweepDeletes
    accounting: LedgerAccount  # the arithmetic status prints
    open_elsewhere: tuple[OpenElsewhere, ...]
    safe_to_delete: tuple[SafeToDelete, ...]
    verdict: str  # the headline in one sentence
    running: RunNow | None  # None: no run holds the ledger
    last_run: RunRecord | None  # None: no run yet
    last_run_pending: int | None  # pairs the last run planned and did not finish
    runs: int
    chain_head: ChainHead | None  # None: an empty ledger
    reappeared: Reappeared

    def as_json(self) -> dict[str, Any]:
        """The ``status --json`` object: a key per field, nested objects and lists as declared."""
        return to_json(type(self), self)  # type: ignore[no-any-return]


def hints(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their declared types, in declaration order."""
    found = typing.get_type_hints(cls)
    return {f.name: found[f.name] for f in dataclasses.fields(cls)}


def shape(tp: Any) -> str:
    """A declared type in the README's words: ``integer``, ``text or null``, ``list of ...``."""
    if tp == JsonObject:
        return "object (as recorded)"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        parts = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(shape(a) for a in parts) + " or null"
    if origin is tuple:
        return f"list of {shape(typing.get_args(tp)[0])}"
    if origin is not None and issubclass(origin, Mapping):
        return f"object of {shape(typing.get_args(tp)[1])}s"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "object (" + ", ".join(hints(tp)) + ")"
    return {int: "integer", str: "text", bool: "true or false"}[tp]


def reference() -> list[str]:
    """The README's table of ``status --json``'s keys and their types, in declared order."""
    rows = ["| key | value |", "| --- | --- |"]
    rows += [f"| `{name}` | {shape(tp)} |" for name, tp in hints(LedgerStatus).items()]
    return rows
