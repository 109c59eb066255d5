"""The use cases: what each command does, typed, without the terminal.

Each takes a loaded :class:`~erasure.job.Job` and plain options and returns a
frozen result that :mod:`erasure.cli` prints; a user's mistake raises an
:class:`~erasure.errors.ErasureError` whose family the CLI maps to an exit
code. Nothing here prints, reads standard input or knows exit codes beyond
the run's own summary.

==========  ==========================================================
validate    read and check the input, plan against the ledger, send nothing
dry_run     the same, for ``run --dry-run``
run         lock the ledger, plan, run the Runner, record the run's end
status      counts from the ledger
report      write the compliance report
verify      walk the ledger's chain
lookup      was this identifier erased, by keyed hash
==========  ==========================================================
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import polars as pl

from erasure import intake, logs
from erasure import ledger as ledger_mod
from erasure import report as report_mod
from erasure import status as status_mod
from erasure.errors import ErasureError, ExitCode, OutputError, UsageError
from erasure.intake import Counts, Intake
from erasure.job import Job, Matching
from erasure.keys import Keyer, Role
from erasure.ledger import ChainCheck, Ledger
from erasure.ledger import read as ledger_read
from erasure.ledger.archive import Archived
from erasure.lookup import keys_for
from erasure.receipts.canonical import parse_head
from erasure.run import Options, Plan, Runner, Summary, finish_event, make_plan

# ---------------------------------------------------------------- validate / dry run


@dataclass(frozen=True, slots=True)
class InputOptions:
    """Where the input comes from and where its rejected cells go."""

    input: Path | None = None  # overrides the job's [input] path
    rejects: Path | None = None  # overrides the job's rejects path


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``validate`` (and ``run --dry-run``) found: the intake's counts and the plan's."""

    input: Path
    counts: Counts
    already_done: int  # pairs of the input with a final outcome in the ledger
    to_send: int  # keys the run would send
    in_doubt: int  # of those, keys an earlier run may have reached unanswered
    rejects: Path | None  # the rejects file written, if any row was rejected


def validate(job: Job, options: InputOptions, *, retry_rejected: bool = False) -> Checked:
    """Read, normalise, validate and deduplicate the input; plan against the ledger."""
    keyer = job.keyer(Role.IDENTIFIER, command="erasure validate")
    data, rejects = _read_input(job, keyer, options)
    plan = _plan_from_ledger(job, keyer, data.items, retry_rejected)
    return Checked(data.path, data.counts, plan.already_done, plan.to_send, plan.in_doubt, rejects)


def _read_input(job: Job, keyer: Keyer, options: InputOptions) -> tuple[Intake, Path | None]:
    """The intake, and the rejects file it wrote (None when nothing was rejected)."""
    if options.input is None and job.input.path is None:
        raise UsageError("no input file: set [input] path in the job file or pass --input")
    data = intake.read(job, keyer, options.input)
    if not data.rejects.height:
        return data, None
    rejects = options.rejects or job.rejects_path
    try:
        rejects.parent.mkdir(parents=True, exist_ok=True)
        intake.write_rejects(data.rejects, rejects, job.perms)
    except OSError as exc:
        raise OutputError(f"cannot write the rejects file {rejects}: {exc.strerror}") from None
    return data, rejects


def _plan_from_ledger(job: Job, keyer: Keyer, items: pl.DataFrame, retry_rejected: bool) -> Plan:
    """The plan against the ledger as it is, read-only; without a ledger, everything."""
    if not job.ledger.path.exists():
        empty = pl.DataFrame(
            schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}
        )
        return make_plan(items, empty, set())
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
        ledger_read.fast(db, job.ledger.path)
        # only tonight's keys: the cost follows the input, not the history
        finished, doubtful = ledger_read.tonight(
            db, items.get_column("key"), retry_rejected=retry_rejected
        )
        return make_plan(items, finished, doubtful)


# ---------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``erasure run``'s options; ``runner`` carries the deadline, the bar and the retry policy."""

    input: InputOptions = field(default_factory=InputOptions)
    retry_rejected: bool = False
    runner: Options = field(default_factory=Options)


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
        plan, input_info = _plan_locked(job, keyer, ledger, options)
        run_no = ledger.next_run()
        log.info(
            "erasure.run.started",
            run=run_no,
            input_rows=input_info["rows"],
            to_send=plan.to_send,
            already_done=plan.already_done,
            in_doubt=plan.in_doubt,
            rejected_rows=input_info["rejected"],
        )
        runner = Runner(job, plan, ledger, run_no, token, options.runner, input_info=input_info)
        summary = anyio.run(runner.execute, backend_options=loop_options())
        code = summary.exit_code()
        try:
            ledger.append([finish_event(run_no, summary, code)])
        except ErasureError as exc:
            if summary.fatal is None:
                summary.fatal = exc
            code = summary.exit_code()
    log.info("erasure.run.finished", **summary.as_dict(), exit_code=int(code))
    return RunResult(summary, code, job.ledger.path)


def _plan_locked(
    job: Job, keyer: Keyer, ledger: Ledger, options: RunOptions
) -> tuple[Plan, dict[str, Any]]:
    """The run's plan (work only) and the input's record, with the ledger locked."""
    data, _ = _read_input(job, keyer, options.input)
    # The ledger (migrated when it was opened) is asked about tonight's keys
    # only: a join against its derived state, not a read of its history.
    finished, doubtful = ledger_read.tonight(
        ledger.connection, data.items.get_column("key"), retry_rejected=options.retry_rejected
    )
    plan = make_plan(data.items, finished, doubtful)
    input_info: dict[str, Any] = {
        "path": str(data.path),
        "sha256": data.sha256,
        "rows": data.counts.rows,
        "rejected": data.counts.rejected,
    }
    # The run needs only the plan's work frame: the intake's items and the
    # pending pairs go when this returns. The work often shares their keys
    # and values (see erasure.run.plan); the rest, such as the row numbers,
    # is freed.
    return plan.without_pending(), input_info


def loop_options() -> dict[str, bool]:
    """uvloop where it is installed: the event loop is a third of a request's CPU."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - Windows, or a trimmed install
        return {}
    return {"use_uvloop": True}


# ---------------------------------------------------------------- read-only


@contextmanager
def _readonly(job: Job) -> Iterator[sqlite3.Connection]:
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        ledger_read.fast(db, job.ledger.path)  # an unmigrated ledger: say it will be slower
        yield db


@dataclass(frozen=True, slots=True)
class Status:
    """``erasure status``: the ledger's path and :func:`erasure.status.status`'s counts."""

    ledger: Path
    info: Mapping[str, Any]  # total, one count per outcome, in_doubt, overdue, last_run, ...


def status(job: Job) -> Status:
    with _readonly(job) as db:
        return Status(job.ledger.path, status_mod.status(db))


def report(job: Job, out: Path, *, run: int | None = None, request_id: str | None = None) -> Path:
    """Write the compliance report to ``out`` (its suffix picks the format); return ``out``.

    All requests, or only the pairs ``run`` planned, or those of ``request_id``.
    """
    with _readonly(job) as db:
        report_mod.write(db, job, out, run=run, request_id=request_id)
    return out


def verify(job: Job, *, start: str | None = None, archives: tuple[Path, ...] = ()) -> ChainCheck:
    """Check the ledger: both chains, its structure and its derived state.

    ``start`` is a head ``SEQ:LINK`` printed by an earlier verify: only what
    follows is checked. ``archives`` are archive files to check as the
    chain's start.
    """
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
    keyer = job.keyer(Role.IDENTIFIER, command="erasure lookup")
    keys = keys_for(job, keyer, matching, raw, db_id=db_id, resource_id=resource_id)
    with _readonly(job) as db:
        rows = status_mod.lookup(db, keys)
    found = tuple(
        Found(
            request_id=row["request_id"],
            outcome=row["outcome"],
            in_doubt=bool(row["in_doubt"]),
            finished_at=row["finished_at"],
            key=row["key"],
            profile_id=row["profile_id"],
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
    from erasure.ledger.archive import archive as archive_ledger

    keyer = job.keyer(Role.CHAIN, command="erasure archive")
    with Ledger(job.ledger.path, keyer, perms=job.perms) as ledger:
        return archive_ledger(ledger, before, out, job.perms)
