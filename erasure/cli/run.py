"""The commands that read the input and send deletes: validate and run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.cli.base import (
    Handler,
    SubParsers,
    _command,
    _input_arguments,
    _load,
    _output_arguments,
    _Shell,
    clock_time,
    duration,
    seconds_until,
)
from erasure.errors import MEANINGS
from erasure.wording import count

if TYPE_CHECKING:
    from erasure import validation
    from erasure.job import Job
    from erasure.run import Summary
    from erasure.validation import Checked


def register(sub: SubParsers) -> None:
    p = _command(
        sub,
        "validate",
        "Read, normalise, validate and deduplicate the input; "
        "print the counts; write the rejected rows. Sends nothing.",
    )
    _input_arguments(p)

    p = _command(
        sub,
        "run",
        "Erase: send one delete per pending identifier, record every "
        "outcome in the ledger. Resumes from the ledger on its own.",
    )
    _input_arguments(p)
    p.add_argument(
        "--dry-run", action="store_true", help="validate and print the plan; send nothing"
    )
    p.add_argument(
        "--retry-rejected",
        action="store_true",
        help="send again the identifiers whose last outcome was rejected",
    )
    p.add_argument(
        "--plan",
        type=Path,
        metavar="APPROVED",
        help="the approved plan ([approval]: erasure plan, then erasure approve)",
    )
    p.add_argument(
        "--max-duration",
        type=duration,
        metavar="DURATION",
        help="stop cleanly after this long (90s, 45m, 2h, 1h30m); exit 75",
    )
    p.add_argument(
        "--stop-at",
        type=clock_time,
        metavar="HH:MM",
        help="stop cleanly at the next occurrence of this local time; exit 75",
    )
    _output_arguments(p)


INVALID_LISTED = 200  # invalid records listed by validate; the rest are counted


def _print_checked(shell: _Shell, checked: Checked) -> None:
    """The input's arithmetic, then each invalid record: row, column and reason, never the cell."""
    a = checked.account
    where = f" (header on row {checked.header_row})" if checked.header_row else ""
    shell.print(f"input: {checked.input}{where}", *a.lines())
    if checked.repairs:
        kinds = ", ".join(f"{kind} {n}" for kind, n in checked.repairs.items())
        shell.print(f"repaired cells (read as valid): {kinds}")
    if checked.in_doubt:
        shell.print(f"in doubt (sent again): {checked.in_doubt}")
    listed = checked.invalid.head(INVALID_LISTED)
    for rec in listed.iter_rows(named=True):
        ticket = f" request {rec['request_id']}" if rec["request_id"] else ""
        shell.print(f"  invalid: row {rec['row']}{ticket}: {rec['reason']}: {rec['words']}")
    if checked.invalid.height > listed.height:
        more = checked.invalid.height - listed.height
        shell.print(f"  ... and {more} more invalid records (--rejects PATH lists them all)")
    if checked.rejects is not None:
        shell.print(f"rejects file (raw cells, owner-only): {checked.rejects}")


def _input_options(args: argparse.Namespace) -> validation.InputOptions:
    from erasure import validation

    return validation.InputOptions(input=args.input, rejects=args.rejects)


def cmd_validate(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import validation

    checked = validation.validate(_load(args), _input_options(args))
    _print_checked(shell, checked)
    return int(checked.exit_code)


def cmd_run(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app, logs, validation
    from erasure.run import Options

    fmt = logs.choose_format(args.log_format)
    logs.configure(fmt)
    shell.json_errors = fmt == "json"
    job = _load(args)
    if args.dry_run:
        checked = validation.validate(job, _input_options(args), retry_rejected=args.retry_rejected)
        _print_checked(shell, checked)
        shell.print("dry run: nothing was sent")
        return int(checked.exit_code)
    deadline = None
    if args.max_duration is not None:
        deadline = time.monotonic() + args.max_duration
    if args.stop_at is not None:
        at = time.monotonic() + seconds_until(*args.stop_at)
        deadline = at if deadline is None else min(deadline, at)
    progress = not args.no_progress and fmt == "console" and shell.err.isatty()
    options = app.RunOptions(
        input=_input_options(args),
        retry_rejected=args.retry_rejected,
        runner=Options(deadline=deadline, progress=progress),
        plan=args.plan,
    )
    result = app.run(job, options)
    summary, code = result.summary, result.exit_code
    if summary.fatal is not None:
        shell.fail(str(summary.fatal), code)
    elif summary.stop_detail and summary.stop_reason in _SAID_ON_STDERR:
        shell.fail(summary.stop_detail, code)
    if fmt != "json":
        _print_summary(shell, summary, code, job)
    return int(code)


# A run stopped for these reasons says why in one line, as a failed command does.
_SAID_ON_STDERR = frozenset({"token", "unavailable", "ledger"})


def _print_summary(shell: _Shell, summary: Summary, code: int, job: Job) -> None:
    o = summary.as_dict()["outcomes"]
    rate = summary.requests / summary.duration_s if summary.duration_s > 0 else 0.0
    shell.print(
        f"run {summary.run}: erased {o['erased']}, not found {o['not_found']}, "
        f"rejected {o['rejected']}, failed {o['failed']}, not reached {_not_reached(summary)}"
        f" of {summary.planned_pairs} pairs to send (in doubt {summary.in_doubt});"
        f" invalid records in the input {summary.invalid}; {count(summary.requests, 'delete')} in "
        f"{summary.duration_s:.1f} s ({rate:.0f}/s)",
        *(
            [
                "held back by a person's decision (a hold or a cancellation): "
                + count(summary.set_aside + summary.held_back, "pair")
                + ", never sent (erasure holds)"
            ]
            if summary.set_aside + summary.held_back
            else []
        ),
        *(
            [
                f"suppression lists: {summary.suppressed} added, {summary.suppression_failed}"
                " failed (the next run tries them again)"
            ]
            if job.suppress is not None
            else []
        ),
        f"ledger: {job.ledger.path}",
        f"report: erasure report {job.path} --out report.html",
        f"exit {int(code)}: {MEANINGS.get(int(code), '')}",
    )


def _not_reached(summary: Summary) -> int:
    """Pairs of the plan with no outcome in this run: the rest of ``planned_pairs``."""
    return summary.planned_pairs - sum(summary.outcomes.values()) - summary.held_back


HANDLERS: dict[str, Handler] = {"validate": cmd_validate, "run": cmd_run}
