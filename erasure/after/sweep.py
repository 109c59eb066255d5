"""``erasure sweep``: profiles that came back after a finished erasure.

An export of the Altcraft database (``[sweep]`` maps its profile id and
identifier columns) is read as screening reads a file, and each row is
checked against the ledger's finished pairs (last outcome ``erased`` or
``not_found``) of that database:

- ``profile_id`` match: the row's profile id is one the ledger recorded as
  erased (a restored backup). It is deleted again, by profile id.
- ``identifier`` match: the row only shares an identifier with a finished
  request (a re-import, a person who came back with fresh consent, a
  reassigned phone). A person decides: it is listed and ``waiting``, and
  deleted only with ``--include-identifier-matches``.

Each match is one ``reappeared`` event (request id, key and matching of the
match, db_id, profile_id; detail ``match``, ``decision``,
``first_erased_seq``, and ``delete_key`` when it is deleted), committed with
the run's start; the deletes follow as an ordinary plan of the same run
(:class:`~erasure.run.Runner`: the same rate ceiling, preflight, retries and
ledger lock as ``run``). A waiting match already listed by an earlier sweep
is not recorded again, only counted.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from erasure import decisions, holdback, logs
from erasure import ledger as ledger_mod
from erasure.errors import ExitCode, worst
from erasure.intake import as_text, find_column, normalize
from erasure.job import Job, Sweep
from erasure.keys import Keyer, Role, message_prefix
from erasure.ledger import Event, Kind, Ledger, finality, sweeps
from erasure.ledger.details import ReappearedDetail, encode, loads
from erasure.ledger.reappeared import REAPPEARED_SCHEMA as REAPPEARED_SCHEMA
from erasure.ledger.reappeared import reappeared as reappeared
from erasure.run import Options, Plan, Summary, execute

from .cells import Identity, Spec, finished_identities, identities, matches, normalised, open_file

__all__ = ["Decision", "Match", "MatchKind", "SweepResult", "find", "reappeared", "sweep"]


class MatchKind(enum.StrEnum):
    """How an exported profile matched a finished erasure: a closed set."""

    # Its profile id is one the ledger recorded as erased: a restored backup.
    PROFILE_ID = "profile_id"
    # Only an identifier matches: a new profile, which a person decides on.
    IDENTIFIER = "identifier"


class Decision(enum.StrEnum):
    """What the sweep does with a match: a closed set."""

    # Deleted again by profile id in this run.
    DELETED = "deleted"
    # Listed for a person to decide (--include-identifier-matches deletes it).
    WAITING = "waiting"
    # A legal hold names its request, its key or its profile: never deleted while it stands.
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Match:
    """One exported profile that came back; never its identifier, only keys."""

    row: int  # in the export, as a spreadsheet numbers it
    profile_id: str
    request_id: str | None  # the request that erased it first
    key: str  # the key that matched (the profile id's own key for a profile_id match)
    matching: str  # the matching mode of that key
    match: MatchKind
    decision: Decision
    first_erased_seq: int  # the outcome event of that first erasure
    delete_key: str  # the key of a delete by this profile id (in this database)
    listed_before: bool = False  # a waiting match an earlier sweep recorded already


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What ``sweep`` found and did; ``exit_code`` follows the contract."""

    export: Path
    rows: int  # profiles in the export
    matches: tuple[Match, ...]
    dry_run: bool
    exit_code: ExitCode
    summary: Summary | None = None  # the deletes' run (None: dry run)
    unusable: int = 0  # rows without a profile id
    # a finished sweep of the same export (its run), not repeated without --again: nothing sent
    already: int | None = None
    resumed: int = 0  # deletes an earlier sweep of this export finished: not sent again

    @property
    def deleted(self) -> int:
        return sum(1 for m in self.matches if m.decision is Decision.DELETED)

    @property
    def waiting(self) -> int:
        return sum(1 for m in self.matches if m.decision is Decision.WAITING)


@dataclass(frozen=True, slots=True)
class _Export:
    path: Path
    sha256: str
    rows: int
    unusable: int
    matches: list[Match] = field(default_factory=list)


def _settings(job: Job) -> Sweep:
    job.sweep.database()  # 78 when the job names no database for the export
    return job.sweep


def find(
    job: Job, keyer: Keyer, db: sqlite3.Connection, export: Path, *, include_identifier: bool
) -> _Export:
    """The export's profiles that came back, each with its decision."""
    settings = _settings(job)
    table, specs = open_file(export, settings.columns)
    pid_column = find_column(
        table.names, settings.profile_id_column, "sweep.profile_id_column", table.file
    )
    frame = table.collect(list(dict.fromkeys([pid_column, *(s.column for s in specs)])))
    rows = table.row_numbers(frame.height)
    pid_text, _ = as_text(frame.get_column(pid_column), table.file)
    pids = normalize.texts(pid_text).get_column("value")  # trimmed; empty is null

    finished = finished_identities(db).filter(pl.col("db_id") == settings.database())
    first = finished.unique(subset="key", keep="first", maintain_order=True)
    by_key = {r["key"]: r for r in first.iter_rows(named=True)}
    erased_pids = {
        r["profile_id"]: r
        for r in finished.filter(pl.col("profile_id").is_not_null())
        .unique(subset="profile_id", keep="first", maintain_order=True)
        .iter_rows(named=True)
    }
    combos = identities(finished)
    wanted = set(by_key)
    pid_combos = [Identity(settings.database(), "profile_id", None, None)]
    pid_spec = Spec("profile_id", pid_column)
    pid_keys = _keys_of(pids, pid_spec, pid_combos, keyer)
    pid_hits = dict(matches(pids, pid_spec, pid_combos, keyer, wanted).iter_rows())
    cell_hits: list[tuple[pl.Series, dict[str, str], str]] = []
    for spec in specs:
        values = normalised(frame.get_column(spec.column), spec, table.file, job.input.phone_region)
        column = values.get_column("value")
        cell_hits.append(
            (column, dict(matches(column, spec, combos, keyer, wanted).iter_rows()), spec.matching)
        )
    listed = _listed(db)
    found: list[Match] = []
    origins: set[str] = set()  # keys whose erasure each match rests on
    unusable = 0
    for i, pid in enumerate(pids):
        if pid is None:
            unusable += 1
            continue
        origin = erased_pids.get(pid) or by_key.get(pid_hits.get(pid, ""))
        if origin is not None:
            origins.add(origin["key"])
            found.append(
                Match(int(rows[i]), pid, origin["request_id"], pid_keys[pid], "profile_id",
                      MatchKind.PROFILE_ID, Decision.DELETED, int(origin["seq"]), pid_keys[pid])
            )  # fmt: skip
            continue
        for column, hits, matching in cell_hits:
            value = column[i]
            key = hits.get(value) if value is not None else None
            if key is None:
                continue
            origin = by_key[key]
            origins.add(origin["key"])
            decision = Decision.DELETED if include_identifier else Decision.WAITING
            found.append(
                Match(int(rows[i]), pid, origin["request_id"], key, matching,
                      MatchKind.IDENTIFIER, decision, int(origin["seq"]), pid_keys[pid],
                      decision is Decision.WAITING and (pid, origin["request_id"]) in listed)
            )  # fmt: skip
            break
    finality.check_keys(db, origins, keyer)  # those erasures, borne out by the events (78)
    return _Export(export, table.sha256, frame.height, unusable, found)


def _keys_of(pids: pl.Series, spec: Spec, combos: list[Identity], keyer: Keyer) -> dict[str, str]:
    """Each profile id's own key (its delete's key), under the export's database."""
    combo = combos[0]
    distinct = pids.drop_nulls().unique(maintain_order=True).to_list()
    prefix = message_prefix(combo.db_id, spec.matching, combo.resource_id, combo.field_name)
    return dict(zip(distinct, keyer.keys(prefix, distinct), strict=True))


def _listed(db: sqlite3.Connection) -> set[tuple[str, str | None]]:
    """(profile id, request id) of waiting matches earlier sweeps recorded."""
    rows = db.execute(
        "SELECT profile_id, request_id, detail FROM events WHERE kind = ?", (Kind.REAPPEARED,)
    ).fetchall()
    out = set()
    for pid, rid, detail in rows:
        if loads(ReappearedDetail, detail).decision == Decision.WAITING:
            out.add((pid, rid))
    return out


def sweep(
    job: Job,
    export: Path,
    *,
    dry_run: bool = False,
    include_identifier_matches: bool = False,
    options: Options | None = None,
    approved_plan: Path | None = None,
    again: bool = False,
) -> SweepResult:
    """Find the profiles that came back; unless ``dry_run``, record and delete them.

    Per export (its SHA-256, erasure.ledger.sweeps): an unfinished sweep of it
    resumes, sending only the deletes without a final outcome and recording no
    match twice; a finished one is not repeated unless ``again`` (a second
    restore produced the same export).
    """
    _settings(job)
    if dry_run:
        keyer = job.keyer(Role.IDENTIFIER, command="erasure sweep --dry-run")
        with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
            ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
            found = find(job, keyer, db, export, include_identifier=include_identifier_matches)
            found.matches[:] = _held(db, job.ledger.path, found.matches)
        code = _rejected(found.matches)
        return SweepResult(
            export, found.rows, tuple(found.matches), True, code, None, found.unusable
        )
    keyer = job.keyer(Role.CHAIN, command="erasure sweep")
    token = job.token()
    if not job.ledger.path.exists():
        ledger_mod.open_readonly(job.ledger.path)  # raises: no ledger, nothing was erased
    with Ledger(
        job.ledger.path, keyer, max_pages=ledger_mod.max_pages_from_env(), perms=job.perms
    ) as ledger:
        with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
            found = find(job, keyer, db, export, include_identifier=include_identifier_matches)
            found.matches[:] = _held(db, job.ledger.path, found.matches)
            earlier = sweeps.of_export(db, found.sha256)
        if again:  # a new restore: every delete again, every match recorded again
            earlier = sweeps.ExportSweeps((), None, frozenset(), frozenset())
        left = [m for m in found.matches if m.decision is Decision.DELETED]
        if earlier.finished_run is not None and all(m.delete_key in earlier.final for m in left):
            logs.get().warning(
                "erasure.sweep.already_swept", run=earlier.finished_run, sha256=found.sha256[:12],
                message="this export was swept whole already; pass --again if a second restore "
                "produced the same export",
            )  # fmt: skip
            code = _rejected(found.matches)
            return SweepResult(
                export, found.rows, tuple(found.matches), False, code, None, found.unusable,
                already=earlier.finished_run,
            )  # fmt: skip
        run_no = ledger.next_run()
        settings = _settings(job)
        events = [
            _event(run_no, m, settings.database())
            for m in found.matches
            if not m.listed_before
            and (m.profile_id, m.request_id, m.decision.value) not in earlier.recorded
        ]
        todo = [m for m in found.matches if m.delete_key not in earlier.final]
        plan = _plan(todo, settings.database())
        _four_eyes(
            job, ledger, approved_plan, plan, (export, found.sha256),
            include_identifier_matches, run_no,
        )  # fmt: skip
        info = {"path": str(export), "sha256": found.sha256, "rows": found.rows, "rejected": 0}
        opts = options or Options()
        opts = replace(opts, command="sweep", first_events=tuple(events))
        logs.get().info(
            "erasure.sweep.started", run=run_no, rows=found.rows, matches=len(found.matches),
            to_delete=plan.to_send,
        )  # fmt: skip
        summary, code = execute(
            job, plan, ledger, run_no, token, opts, input_info=info,
            exit_code=lambda done: worst(done.exit_code(), _rejected(found.matches)),
        )  # fmt: skip
    return SweepResult(
        export, found.rows, tuple(found.matches), False, code, summary, found.unusable,
        resumed=len({m.delete_key for m in found.matches if m.delete_key in earlier.final}),
    )  # fmt: skip


def _held(db: sqlite3.Connection, ledger: Path, found: list[Match]) -> list[Match]:
    """The matches, those a standing hold names (request, key or profile) decided ``held``."""
    standing = decisions.read(db, ledger, datetime.now(UTC))
    if not standing.holds:
        return found
    gate = holdback.Gate.of(standing, decisions.requests_naming(db, standing.held_keys))
    return [
        replace(m, decision=Decision.HELD)
        if gate.blocks(m.key, [m.request_id]) or gate.blocks(m.delete_key, [m.request_id])
        else m
        for m in found
    ]


def _four_eyes(
    job: Job,
    ledger: Ledger,
    approved: Path | None,
    plan: Plan,
    export: tuple[Path, str],
    include_identifier_matches: bool,
    run: int,
) -> None:
    """``[approval]``: refuse (78) unless the approved plan covers these deletes; record it."""
    from erasure import approval
    from erasure import tonight as planning

    tonight = planning.tonight_of_work(
        "sweep",
        planning.sweep_flags(include_identifier_matches),
        [(export[0].name, export[1])],
        plan.work,
    )
    ledger.append(approval.check(job, ledger.connection, approved, tonight, run=run))


def _rejected(found: Sequence[Match]) -> ExitCode:
    """A sweep that found anything come back makes a person look (1)."""
    return ExitCode.REJECTED if found else ExitCode.OK


def _event(run: int, m: Match, db_id: int) -> Event:
    detail = ReappearedDetail(
        match=m.match.value,
        decision=m.decision.value,
        first_erased_seq=m.first_erased_seq,
        delete_key=m.delete_key if m.decision is Decision.DELETED else None,
    )
    return Event(
        Kind.REAPPEARED,
        run,
        key=m.key,
        request_id=m.request_id,
        db_id=db_id,
        matching=m.matching,  # type: ignore[arg-type]
        profile_id=m.profile_id,
        detail=encode(detail),
    )


def _plan(found: list[Match] | tuple[Match, ...], db_id: int) -> Plan:
    """Deletes by profile id of the matches decided ``deleted``, one per profile."""
    by_pid: dict[str, list[str | None]] = {}
    for m in found:
        if m.decision is Decision.DELETED:
            by_pid.setdefault(m.profile_id, [])
            if m.request_id not in by_pid[m.profile_id]:
                by_pid[m.profile_id].append(m.request_id)
    keys = {m.profile_id: m.delete_key for m in found}
    rows: list[dict[str, Any]] = []
    for pid, request_ids in by_pid.items():
        rows.append(
            {
                "key": keys[pid],
                "db_id": db_id,
                "matching": "profile_id",
                "resource_id": None,
                "field_name": None,
                "value": pid,
                "value_is_int": False,
                "request_ids": request_ids,
                "received_ats": [None] * len(request_ids),
                "in_doubt": False,
            }
        )
    work = (
        pl.DataFrame(rows, schema=_WORK_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=_WORK_SCHEMA)
    )
    pairs = sum(len(r["request_ids"]) for r in rows)
    return Plan(pending=pl.DataFrame(), work=work, already_done=0, already_rejected=0, pairs=pairs)


_WORK_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "key": pl.String,
    "db_id": pl.Int64,
    "matching": pl.String,
    "resource_id": pl.Int64,
    "field_name": pl.String,
    "value": pl.String,
    "value_is_int": pl.Boolean,
    "request_ids": pl.List(pl.String),
    "received_ats": pl.List(pl.Datetime("us", "UTC")),
    "in_doubt": pl.Boolean,
}
