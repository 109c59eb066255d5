"""Validate and dry run: the input read, checked and planned against the ledger, nothing sent.

:func:`validate` is ``erasure validate`` and ``erasure run --dry-run``: it
reads the input (:func:`read_input`, which writes the ``--rejects`` file
when asked), plans it against the ledger as it is, read-only
(:func:`plan_from_ledger`), and returns the accounting (:func:`account_of`)
with each invalid record. ``erasure run`` (:mod:`erasure.app`) and
``erasure plan`` (:mod:`erasure.planning`) read their input through the same
functions, so that what validate counts is what they plan.

Like :mod:`erasure.app`, each function imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.errors import ExitCode, UsageError
from erasure.keys import Role
from erasure.outputs import check_output

if TYPE_CHECKING:
    import polars as pl

    from erasure.accounting import InputAccount
    from erasure.intake import Intake
    from erasure.job import Job
    from erasure.keys import Keyer
    from erasure.run import Plan


@dataclass(frozen=True, slots=True)
class InputOptions:
    """Where the input comes from and where its rejected cells go."""

    input: Path | None = None  # overrides the job's [input] path
    rejects: Path | None = None  # --rejects: write the raw rejected cells here (nowhere else)


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``validate`` (and ``run --dry-run``) found: the accounting, and each invalid record."""

    input: Path
    account: InputAccount
    invalid: pl.DataFrame  # intake.INVALID_SCHEMA less ``value``: row, column, reason, words
    in_doubt: int  # keys to send that an earlier run may have reached unanswered
    rejects: Path | None  # the --rejects file written, if asked for
    header_row: int | None = None  # CSV, XLSX: the row the header was found on
    repairs: Mapping[str, int] = field(default_factory=dict)  # repaired cells by kind

    @property
    def exit_code(self) -> ExitCode:
        """1 when the input has invalid rows (cron must notice), else 0."""
        return ExitCode.REJECTED if self.account.invalid else ExitCode.OK


def validate(job: Job, options: InputOptions, *, retry_rejected: bool = False) -> Checked:
    """Read, normalise, validate and deduplicate the input; plan against the ledger."""
    keyer = job.keyer(Role.IDENTIFIER, command="erasure validate")
    data, rejects = read_input(job, keyer, options)
    plan = plan_from_ledger(job, keyer, data.items, retry_rejected)
    return Checked(
        data.path,
        account_of(data, plan),
        data.invalid.drop("value"),
        plan.in_doubt,
        rejects,
        header_row=data.header_row,
        repairs=data.repair_counts(),
    )


def account_of(data: Intake, plan: Plan) -> InputAccount:
    """The input's accounting: the intake's counts, its invalid records and the plan."""
    from erasure.accounting import input_account

    reasons = dict(data.invalid.group_by("reason").len().iter_rows())
    return input_account(data.counts, reasons, plan)


def read_input(job: Job, keyer: Keyer, options: InputOptions) -> tuple[Intake, Path | None]:
    """The intake, and the --rejects file it wrote (None when not asked for)."""
    from erasure import deadlines, intake
    from erasure.report.rejects import write_rejects

    if options.input is None and job.input.path is None:
        raise UsageError("no input file: set [input] path in the job file or pass --input")
    if options.rejects is not None:  # refused before the input is read: nothing written
        check_output(
            options.rejects, job, flag="--rejects", inputs=[options.input], folder_must_exist=False
        )
    data = intake.read(job, keyer, options.input)
    received = data.items.get_column("received_at")  # a working-day rule needs its calendar
    deadlines.check_received(received.min(), received.max(), job.input.deadline)  # type: ignore[arg-type]
    if options.rejects is None:
        return data, None  # nothing raw is ever written beside the ledger by default
    write_rejects(data.invalid, options.rejects, job.perms)
    return data, options.rejects


def plan_from_ledger(job: Job, keyer: Keyer, items: pl.DataFrame, retry_rejected: bool) -> Plan:
    """The plan against the ledger as it is, read-only; without a ledger, everything."""
    import polars as pl

    from erasure import holdback
    from erasure import ledger as ledger_mod
    from erasure.ledger import read as ledger_read
    from erasure.run import make_plan

    if not job.ledger.path.exists():
        empty = pl.DataFrame(
            schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}
        )
        return make_plan(items, empty, set())
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
        # only tonight's keys: the cost follows the input, not the history
        finished, doubtful = ledger_read.tonight(
            db, items.get_column("key"), retry_rejected=retry_rejected
        )
        now = datetime.now(UTC)  # the decisions' clock: whether a hold's until has passed
        return holdback.plan(items, finished, doubtful, db, job.ledger.path, now)
