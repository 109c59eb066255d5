"""The use cases: what each command does, typed, without the terminal.

Each takes a loaded :class:`~erasure.job.Job` and plain options and returns a
frozen result that :mod:`erasure.cli` prints; a user's mistake raises an
:class:`~erasure.errors.ErasureError` whose family the CLI maps to an exit
code. Nothing here prints, reads standard input or knows exit codes beyond
the run's own summary.

==========  ==========================================================
run         lock the ledger, plan, run the Runner, record the run's end
status      counts from the ledger
report      write the compliance report
verify      walk the ledger's chain
lookup      was this identifier erased, by keyed hash
archive     move the events of ended runs into an archive file
==========  ==========================================================

Two groups live beside it: ``validate`` and ``run --dry-run`` in
:mod:`erasure.validation` (whose input reading and plan the run shares),
and what comes after the delete (keygen, receipt, check-receipt, screen)
in :mod:`erasure.after.use_cases`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erasure.errors import ExitCode, UsageError
from erasure.invalid_records import InputFacts, invalid_events
from erasure.keys import Role
from erasure.outputs import check_output
from erasure.validation import InputOptions, account_of, read_input

# Each command imports what it needs when it runs: `lookup`, `status` and
# `verify` never load the network stack (httpx, anyio, aiohttp: a third of
# a second), the intake or the report writers (issue 14: lookup <= 0.5 s).
# tests/test_verify.py holds `import erasure.app` to that.
if TYPE_CHECKING:
    from erasure.intake import Intake
    from erasure.job import Job, Matching
    from erasure.keys import Keyer
    from erasure.ledger import ChainCheck, Ledger
    from erasure.ledger.archive import Archived
    from erasure.run import Options, Plan, Summary
    from erasure.status_result import LedgerStatus


def _default_runner_options() -> Options:
    from erasure.run import Options

    return Options()


# ---------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``erasure run``'s options; ``runner`` carries the deadline, the bar and the retry policy."""

    input: InputOptions = field(default_factory=InputOptions)
    retry_rejected: bool = False
    runner: Options = field(default_factory=_default_runner_options)
    plan: Path | None = None  # --plan APPROVED: the approved plan ([approval], erasure.approval)


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: what it did, and the exit code that follows."""

    summary: Summary
    exit_code: ExitCode
    ledger: Path


def run(job: Job, options: RunOptions) -> RunResult:
    """The erasure: lock the ledger, plan, send, record; resumes from the ledger on its own.

    Raises before anything is sent (a missing token, a busy ledger, an
    unusable input); once the run has begun, its troubles end in the
    summary (``summary.fatal``), so that the run's end is always recorded.
    """

    from erasure import carry, holdback, logs
    from erasure import ledger as ledger_mod
    from erasure.after.hooks import after_run, before_run
    from erasure.ledger import Ledger
    from erasure.run import Summary, execute

    log = logs.get()
    keyer = job.keyer(Role.CHAIN, command="erasure run")
    token = job.token()
    # The lock first: a second run exits 75 before reading anything.
    with Ledger(
        job.ledger.path,
        keyer,
        max_pages=ledger_mod.max_pages_from_env(),
        perms=job.perms,
        progress=options.runner.progress,
    ) as ledger:
        plan, input_info, data = _plan_locked(job, keyer, ledger, options)
        run_no = ledger.next_run()
        _four_eyes(job, ledger, options, plan, input_info, run_no)  # 78 before anything is sent
        notes = invalid_events(ledger.connection, run_no, data)
        notes += holdback.aside_events(ledger.connection, run_no, plan.aside)
        keep = data.keep
        del data  # the run needs only the plan's work (see _plan_locked)
        log.info(
            "erasure.run.started",
            run=run_no,
            job=str(job.path),
            ledger=str(job.ledger.path),
            input_rows=input_info["rows"],
            to_send=plan.pairs,
            deletes=plan.to_send,
            already_done=plan.already_done,
            in_doubt=plan.in_doubt,
            invalid=input_info["invalid"],
        )
        checked = before_run(job, token, keep, options.runner)  # [suppress]: the lists

        def after(summary: Summary) -> None:
            after_run(job, token, ledger, summary, keep, options.runner, checked)  # after/hooks
            carry.after_run(summary, input_info)  # open elsewhere: exit 1; stopped: keep files

        summary, code = execute(
            job, plan, ledger, run_no, token, options.runner, exit_code=Summary.exit_code,
            input_info=input_info, notes=notes, after=after, clock=_now,
        )  # fmt: skip
    log.info("erasure.run.finished", **summary.as_dict(), exit_code=int(code))
    return RunResult(summary, code, job.ledger.path)


def _plan_locked(
    job: Job, keyer: Keyer, ledger: Ledger, options: RunOptions
) -> tuple[Plan, dict[str, Any], InputFacts]:
    """The run's plan (work only), the input's record and facts, with the ledger locked."""
    from erasure import carry, holdback

    data, _ = read_input(job, keyer, options.input)
    _log_repairs(data)
    # tonight's pairs and earlier input files' open ones, against the ledger (erasure.carry)
    t = carry.tonight(ledger.connection, job, keyer, data, retry_rejected=options.retry_rejected)
    plan = holdback.plan(t.items, t.finished, t.doubtful, ledger.connection, ledger.path, _now())
    input_info: dict[str, Any] = {
        "path": str(data.path.absolute()),
        "sha256": data.sha256,
        "rows": data.counts.rows,
        "invalid": data.counts.invalid,
        "account": account_of(data, replace(plan, pairs=plan.pairs - t.extra)).as_dict(),
        **t.info,
    }
    import polars as pl

    from erasure.after.suppress import candidates

    # the suppression candidates: tonight's identifiers, and those of every earlier file
    # read again (its final pairs too: a stopped run's erasures are suppressed now)
    seen = t.items if t.earlier is None else pl.concat([t.items, t.earlier], how="diagonal_relaxed")
    facts = InputFacts(data.sha256, data.invalid.drop("value"), data.usable, candidates(job, seen))
    # The run needs only the plan's work frame: the intake's items and the
    # pending pairs go when this returns. The work often shares their keys
    # and values (see erasure.run.plan); the rest, such as the row numbers,
    # is freed.
    return plan.without_pending(), input_info, facts


def _log_repairs(data: Intake) -> None:
    """One event per kind of repair and column: the rows, never a value."""
    import polars as pl

    from erasure import logs
    from erasure.intake.layout import shown

    by = data.repairs.group_by("kind", "column", maintain_order=True).agg(pl.col("row"))
    for kind, column, rows in by.iter_rows():
        logs.get().info(
            "erasure.input.repaired", kind=kind, column=shown(column), count=len(rows), rows=rows
        )


def _four_eyes(
    job: Job,
    ledger: Ledger,
    options: RunOptions,
    plan: Plan,
    input_info: dict[str, Any],
    run: int,
) -> None:
    """``[approval]``: refuse (78) unless the approved plan covers tonight; record it."""
    from erasure import approval
    from erasure import tonight as planning

    tonight = planning.tonight_of_work(
        "run",
        planning.run_flags(options.retry_rejected),
        planning.inputs_of(Path(input_info["path"]).name, input_info["sha256"], input_info),
        plan.work,
    )
    ledger.append(approval.check(job, ledger.connection, options.plan, tonight, run=run))


def _now() -> datetime:
    """The decisions' clock: whether a hold's ``until`` has passed."""
    return datetime.now(UTC)


# ---------------------------------------------------------------- read-only


@contextmanager
def _readonly(job: Job) -> Iterator[sqlite3.Connection]:
    from erasure import ledger as ledger_mod

    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        # one snapshot for every read of the command: a run appending
        # meanwhile never makes its counts disagree with each other
        db.execute("BEGIN")
        yield db


@dataclass(frozen=True, slots=True)
class Status:
    """``erasure status``: the ledger's path and :func:`erasure.status.status`'s counts."""

    ledger: Path
    info: LedgerStatus  # its as_json() is ``status --json`` (erasure.status_result)


def status(job: Job) -> Status:
    from erasure import status as status_mod

    running = status_mod.running(job.ledger.path)
    with _readonly(job) as db:
        return Status(job.ledger.path, status_mod.status(db, is_running=running))


def request_status(job: Job, request_id: str) -> list[dict[str, Any]]:
    """One request's report rows (identifiers and unresolved invalid records).

    Raises :class:`UnknownRequest` (64) for a request id the ledger has never seen.
    """
    from erasure import report as report_mod
    from erasure.errors import UnknownRequest

    with _readonly(job) as db:  # the report's rows: the request's verdict and deadline too
        found = report_mod.table(db, now=_now(), run=None, request_id=request_id).to_dicts()
    if not found:
        raise UnknownRequest(request_id)
    return found


def report(job: Job, out: Path, *, run: int | None = None, request_id: str | None = None) -> Path:
    """Write the compliance report to ``out`` (its suffix picks the format); return ``out``.

    All requests, or only the pairs ``run`` planned, or those of ``request_id``.
    """
    from erasure import report as report_mod

    with _readonly(job) as db:
        report_mod.write(db, job, out, run=run, request_id=request_id)
    return out


def verify(job: Job, *, start: str | None = None, archives: tuple[Path, ...] = ()) -> ChainCheck:
    """Check the ledger: both chains, its structure and its derived state.

    ``start`` is a head ``SEQ:LINK`` printed by an earlier verify: only what
    follows is checked. ``archives`` are archive files to check as the
    chain's start.
    """
    from erasure import ledger as ledger_mod
    from erasure.receipts.canonical import parse_head

    head = None
    if start is not None:
        try:
            head = parse_head(start)
        except ValueError as exc:
            raise UsageError(f"--from {exc}") from None
    keyer = job.keyer(Role.CHAIN, command="erasure verify")
    return ledger_mod.verify(job.ledger.path, keyer, start=head, archives=archives)


@dataclass(frozen=True, slots=True)
class Found:
    """One request's last state for the identifier asked about."""

    request_id: str | None
    outcome: str
    in_doubt: bool
    finished_at: str | None
    key: str
    profile_id: str | None
    decision: str | None = None  # a held or cancelled pair: the decision's reason, in words


@dataclass(frozen=True, slots=True)
class LookupResult:
    """``erasure lookup``: every request naming the identifier, by keyed hash."""

    keys: tuple[str, ...]  # the keys the identifier may be recorded under
    found: tuple[Found, ...]
    erased: bool  # every request naming it ended erased or not_found (none: False)


def lookup(
    job: Job,
    matching: Matching,
    raw: str,
    *,
    db_id: int | None = None,
    resource_id: int | None = None,
) -> LookupResult:
    """Was this identifier erased? ``raw`` never leaves this function but as its keys."""
    from erasure import decision_words
    from erasure import status as status_mod
    from erasure.lookup import answer, keys_for

    keyer = job.keyer(Role.IDENTIFIER, command="erasure lookup")
    keys = keys_for(job, keyer, matching, raw, db_id=db_id, resource_id=resource_id)
    with _readonly(job) as db:
        rows = answer(db, keys, keyer)
        why = decision_words.reasons(db, job.ledger.path, rows.select("request_id", "key").rows())
    found = tuple(
        Found(
            request_id=row["request_id"],
            outcome=row["outcome"],
            in_doubt=bool(row["in_doubt"]),
            finished_at=row["finished_at"],
            key=row["key"],
            profile_id=row["profile_id"],
            decision=why.get((row["request_id"], row["key"])),
        )
        for row in rows.iter_rows(named=True)
    )
    return LookupResult(tuple(keys), found, status_mod.erased_or_gone(rows))


# ---------------------------------------------------------------- archive


def archive(job: Job, before: str, out: Path) -> Archived:
    """Move the events of runs that ended before ``before`` into the archive file ``out``.

    Takes the ledger's lock (a run cannot write meanwhile) and needs the
    ledger key: the archive record is chained.
    """
    from erasure.ledger import Ledger
    from erasure.ledger.archive import archive as archive_ledger

    check_output(out, job)
    keyer = job.keyer(Role.CHAIN, command="erasure archive")
    with Ledger(job.ledger.path, keyer, perms=job.perms) as ledger:
        return archive_ledger(ledger, before, out, job.perms)
