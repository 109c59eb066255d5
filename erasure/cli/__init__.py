"""The shell: arguments in, exit codes out.

The only module that knows about exit codes, standard streams and the
terminal. It parses the command line, calls the use case in
:mod:`erasure.app`, prints its result, and turns every
:class:`~erasure.errors.ErasureError` into one line on stderr
(``erasure: error: ...``) and its family's exit code; nothing else escapes
as a traceback except a genuine bug.

About 430 lines, kept in one module: most of it is the argument parser,
whose help texts and examples are the commands' documentation.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from erasure import __version__
from erasure.errors import MEANINGS, ErasureError, ExitCode

if TYPE_CHECKING:  # the use cases load polars and the rest only for a command that needs them
    from erasure import app
    from erasure.app import Checked
    from erasure.job import Job, Matching
    from erasure.run import Summary

EXAMPLES = {
    "validate": "erasure validate jobs/demo.toml --rejects /tmp/rejects.csv",
    "run": "erasure run jobs/nightly.toml --max-duration 2h --log-format json",
    "status": "erasure status jobs/demo.toml --json",
    "report": "erasure report jobs/demo.toml --out report.html",
    "verify": 'erasure verify jobs/demo.toml --from "$(cat last-head.txt)"',
    "archive": "erasure archive jobs/demo.toml --before 2024-01-01 --out archive-2023.sqlite",
    "lookup": "echo 'ivan@example.com' | erasure lookup jobs/demo.toml --email -",
    "sandbox": "erasure sandbox --port 8080 --profiles sample_data/profiles.csv",
    "keygen": "erasure keygen --out secrets/receipts.key --ledger-key secrets/ledger.key",
    "receipt": "erasure receipt jobs/demo.toml --request-id T-1042 --out T-1042.html",
    "check-receipt": "erasure check-receipt T-1042.json --public-key receipts.key.pub "
    "--job jobs/demo.toml",
    "screen": "erasure screen jobs/demo.toml --input crm-import.csv --out crm-import.clean.csv",
    "sweep": "erasure sweep jobs/demo.toml --export altcraft-export.csv --dry-run",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr and exits 64 (EX_USAGE), not 2."""

    def error(self, message: str) -> NoReturn:
        # One line, as for every other error (the contract); the usage is a --help away.
        self.exit(ExitCode.USAGE, f"erasure: error: {message} (see: {self.prog} --help)\n")


def _command(
    sub: argparse._SubParsersAction[_Parser],
    name: str,
    help_text: str,
    example: str | None = None,
    *,
    with_job: bool | None = None,
) -> _Parser:
    """A subcommand's parser; ``example`` defaults to :data:`EXAMPLES`, ``with_job`` adds JOB."""
    parser: _Parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"Example:\n  {example or EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if (name not in _NO_JOB) if with_job is None else with_job:
        parser.add_argument("job", type=Path, metavar="JOB", help="the TOML job file")
    return parser


_NO_JOB = frozenset({"sandbox", "keygen", "check-receipt"})  # commands without a JOB argument


def duration(text: str) -> float:
    """``90s``, ``45m``, ``2h``, ``1h30m`` -> seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 45m, 2h, 1h30m")
    h, m, s = (int(g or 0) for g in match.groups())
    seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be longer than 0 seconds")
    return float(seconds)


def clock_time(text: str) -> tuple[int, int]:
    """``06:00`` -> (6, 0)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a local time such as 06:00")
    return int(match.group(1)), int(match.group(2))


def seconds_until(hour: int, minute: int, now: datetime | None = None) -> float:
    """Seconds until the next occurrence of local time ``hour:minute``."""
    now = now or datetime.now().astimezone()
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()


def _output_arguments(parser: _Parser) -> None:
    """What a command that sends deletes shows while it runs (run, sweep)."""
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    parser.add_argument(
        "--log-format",
        choices=("json", "console"),
        help="json: one JSON object per stderr line (default when stderr is not a TTY)",
    )


def _input_arguments(parser: _Parser) -> None:
    parser.add_argument("--input", type=Path, help="the input file (overrides [input] path)")
    parser.add_argument(
        "--rejects",
        type=Path,
        metavar="PATH",
        help="write the raw rejected cells here (.csv or .xlsx, owner-only); nothing by default",
    )


def build_parser(*, with_sandbox: bool = True) -> _Parser:
    parser = _Parser(
        prog="erasure",
        description="Erase people's personal data from Altcraft in bulk, on request, provably.",
        epilog="Example:\n  erasure validate jobs/demo.toml && erasure run jobs/demo.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"erasure {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

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

    p = _command(
        sub,
        "status",
        "The ledger's accounting: pairs by outcome, requests complete or not and why, "
        "unresolved invalid records, in doubt, and the last run (or the one running now).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--request-id", metavar="ID", help="that request's identifiers, outcomes and invalid rows"
    )

    p = _command(sub, "report", "Write the compliance report: .csv, .parquet, .xlsx or .html.")
    p.add_argument(
        "--out", type=Path, required=True, help="the report file; its suffix picks the format"
    )
    only = p.add_mutually_exclusive_group()
    only.add_argument("--run", type=int, metavar="N", help="only the pairs run N planned")
    only.add_argument("--request-id", metavar="ID", help="only this request's identifiers")

    p = _command(
        sub,
        "verify",
        "Check the ledger's keyed hash chain, its plain chain, its structure and "
        "its derived state; name the first broken event; print the chain head as "
        "SEQ:LINK. Exit 0 intact, 1 broken.",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="SEQ:LINK",
        help="check only the events after this head, printed by an earlier verify",
    )
    p.add_argument(
        "--archive",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="an archive file to check as the start of the chain (repeatable)",
    )

    p = _command(
        sub,
        "archive",
        "Move the events of runs finished before DATE into a sealed archive file; "
        "the ledger keeps a record citing its head, and every command still answers "
        "for archived requests.",
    )
    p.add_argument(
        "--before", required=True, metavar="DATE", help="YYYY-MM-DD: runs finished before it"
    )
    p.add_argument("--out", type=Path, required=True, help="the archive file (must not exist)")

    p = _command(
        sub,
        "lookup",
        "Was this person erased? Answers from the ledger by keyed "
        "hash. A value of - is read from standard input. Exit 0 when erased or "
        "not found, 1 otherwise.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--email", metavar="E")
    which.add_argument("--phone", metavar="P")
    which.add_argument("--profile-id", metavar="ID")
    which.add_argument("--field-value", metavar="V")
    p.add_argument("--db-id", type=int, metavar="N", help="the database (default: the job's db_id)")
    p.add_argument(
        "--resource-id", type=int, metavar="N", help="the resource (default: the job's resource_id)"
    )

    _after_the_delete(sub)
    for group in _groups():
        group.register(sub)

    p = _command(
        sub, "sandbox", "A local Altcraft-compatible server for trying jobs and for tests."
    )
    if with_sandbox:
        # the sandbox's server stack loads only for the sandbox command
        from erasure.sandbox.cli import add_arguments

        add_arguments(p)
    return parser


class _Shell:
    """One invocation's standard streams and how errors are written to stderr."""

    def __init__(self, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.stdin = stdin
        self.out = stdout
        self.err = stderr
        self.json_errors = False  # `run` under --log-format json: every stderr line is JSON

    def print(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.out)

    def fail(self, message: str, code: int) -> None:
        """The one line on stderr that says why the command failed."""
        if self.json_errors:
            line = json.dumps(
                {
                    "event": "erasure.error",
                    "level": "error",
                    "error": message,
                    "exit_code": int(code),
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
            )
        else:
            line = f"erasure: error: {message}"
        print(line, file=self.err)


Handler = Callable[[argparse.Namespace, "_Shell"], int]

# Command groups that live in modules of their own under erasure/cli/: each
# module has ``register(sub)`` (adds its parsers, using :func:`_command`) and
# ``HANDLERS: dict[str, Handler]``. Add a group by adding its module's name here.
GROUPS: tuple[str, ...] = ()


def _groups() -> list[Any]:
    import importlib

    return [importlib.import_module(f"erasure.cli.{name}") for name in GROUPS]


def handlers() -> dict[str, Handler]:
    """Every command's handler: this module's and each group's."""
    found = dict(COMMANDS)
    for group in _groups():
        found.update(group.HANDLERS)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_sandbox=bool(argv) and argv[0] == "sandbox").parse_args(argv)
    handler: Handler = handlers()[args.command]
    shell = _Shell(sys.stdin, sys.stdout, sys.stderr)
    try:
        return handler(args, shell)
    except ErasureError as exc:
        shell.fail(str(exc), exc.exit_code)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        shell.fail("interrupted", ExitCode.TEMPFAIL)
        return int(ExitCode.TEMPFAIL)
    except Exception as exc:  # a bug: one line naming its type, never its message (data)
        shell.fail(
            f"internal error: {type(exc).__name__} (a bug; please report it)", ExitCode.SOFTWARE
        )
        return int(ExitCode.SOFTWARE)


def _load(args: argparse.Namespace) -> Job:
    from erasure import job

    return job.load(args.job)


# ---------------------------------------------------------------- validate / run


INVALID_LISTED = 200  # invalid records listed by validate; the rest are counted


def _print_checked(shell: _Shell, checked: Checked) -> None:
    """The input's arithmetic, then each invalid record: row, column and reason, never the cell."""
    a = checked.account
    shell.print(f"input: {checked.input}", *a.lines())
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


def _input_options(args: argparse.Namespace) -> app.InputOptions:
    from erasure import app

    return app.InputOptions(input=args.input, rejects=args.rejects)


def cmd_validate(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    checked = app.validate(_load(args), _input_options(args))
    _print_checked(shell, checked)
    return int(checked.exit_code)


def cmd_run(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app, logs
    from erasure.run import Options

    fmt = logs.choose_format(args.log_format)
    logs.configure(fmt)
    shell.json_errors = fmt == "json"
    job = _load(args)
    if args.dry_run:
        checked = app.validate(job, _input_options(args), retry_rejected=args.retry_rejected)
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
        f" invalid records in the input {summary.invalid}; {summary.requests} requests in "
        f"{summary.duration_s:.1f} s ({rate:.0f}/s)",
        f"ledger: {job.ledger.path}",
        f"report: erasure report {job.path} --out report.html",
        f"exit {int(code)}: {MEANINGS.get(int(code), '')}",
    )


def _not_reached(summary: Summary) -> int:
    """Pairs of the plan with no outcome in this run: the rest of ``planned_pairs``."""
    return summary.planned_pairs - sum(summary.outcomes.values())


# ---------------------------------------------------------------- read-only


def cmd_status(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    if args.request_id is not None:
        return _print_request(shell, app.request_status(job, args.request_id), args.json)
    result = app.status(job)
    _print_notices(shell, job)
    info = result.info
    if args.json:
        shell.print(json.dumps(info, default=str, sort_keys=True))
        return 0
    acc = info["accounting"]
    shell.print(
        f"ledger: {result.ledger}",
        info["verdict"],
        *app.account_lines(acc),
        f"in doubt: {info['in_doubt']} pairs",
        f"invalid: {info['invalid']} unresolved invalid records",
    )
    came_back = info["reappeared"]
    if came_back["profiles"]:
        shell.print(
            f"reappeared: {came_back['profiles']} profiles came back after erasure "
            f"({came_back['by_profile_id']} by profile id, {came_back['by_identifier']} by "
            f"identifier only): {came_back['erased_again']} erased again, "
            f"{came_back['waiting']} waiting for a decision, {came_back['delete_open']} "
            "deleted with no final answer yet"
        )
    now = info["running"]
    last = info["last_run"]
    if now:
        shell.print(
            f"running: run {now['run']} since {now['since']}, {now['in_flight']} requests in flight"
        )
    elif last:
        finished = last["finished_at"] or "never (it was killed: run again to resume)"
        shell.print(
            f"last run: {last['run']} started {last['started_at']}, finished {finished}, "
            f"exit {last['exit_code']}; pending from its plan: {info['last_run_pending']}"
        )
    return 0


def _print_request(shell: _Shell, rows: list[dict[str, object]], as_json: bool) -> int:
    """One request's identifiers and invalid records; exit 1 when the ledger never heard of it."""
    if as_json:
        shell.print(json.dumps(rows, default=str, sort_keys=True))
        return 0 if rows else 1
    if not rows:
        shell.print("no such request in the ledger")
        return 1
    for row in rows:
        if row["outcome"] == "invalid":
            shell.print(f"invalid: row {row['row']} column {row['column'] or '-'}: {row['reason']}")
            continue
        code = "" if row["error_code"] is None else f" code {row['error_code']}"
        http = "" if row["http_status"] is None else f" HTTP {row['http_status']}"
        doubt = " (in doubt)" if row["in_doubt"] else ""
        doubt += " (reappeared: found again by sweep)" if row.get("reappeared") else ""
        shell.print(
            f"{row['matching']} {row['key']}: {row['outcome']}{doubt}{code}{http}"
            f" at {row['finished_at'] or '-'}"
        )
    return 0


def cmd_report(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    out = app.report(job, args.out, run=args.run, request_id=args.request_id)
    _print_notices(shell, job)
    shell.print(f"report: {out}")
    return 0


def cmd_verify(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    check = app.verify(_load(args), start=args.start, archives=tuple(args.archive))
    for note in check.notes:
        shell.print(f"note: {note}")
    if check.ok:
        shell.print(f"ledger intact: {check.events} events")
    else:
        shell.print(f"ledger BROKEN: {check.problem}")
    shell.print(f"chain head: event {check.head_seq} {check.head_link}")
    shell.print(f"head: {check.head_seq}:{check.head_link}")
    if check.plain_link:
        shell.print(f"plain head: {check.head_seq}:{check.plain_link}")
    return 0 if check.ok else 1


def cmd_archive(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    done = app.archive(_load(args), args.before, args.out)
    shell.print(
        f"archived: events {done.first_seq} to {done.head_seq} of runs {done.runs} "
        f"into {done.out} (keep it with the ledger and its key)",
        f"archive head: {done.head_seq}:{done.head_link}",
        f"ledger: {done.ledger} now holds {done.kept} events and the archive record",
    )
    return 0


def _print_notices(shell: _Shell, job: Job) -> None:
    """A ledger not yet migrated is read slowly: say so on stderr."""
    from erasure.ledger.read import unmigrated_notice

    notice = unmigrated_notice(job.ledger.path)
    if notice is not None:
        print(f"erasure: note: {notice}", file=shell.err)


def cmd_lookup(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    # argparse makes exactly one of them required
    given: list[tuple[Matching, str | None]] = [
        ("email", args.email),
        ("phone", args.phone),
        ("profile_id", args.profile_id),
        ("custom", args.field_value),
    ]
    matching, raw = next((mode, value) for mode, value in given if value is not None)
    if raw == "-":
        raw = shell.stdin.readline().rstrip("\r\n")
    result = app.lookup(job, matching, raw, db_id=args.db_id, resource_id=args.resource_id)
    _print_notices(shell, job)
    if not result.found:
        shell.print(f"not in the ledger (key {result.keys[0]})")
        return 1
    for row in result.found:
        doubt = " (in doubt)" if row.in_doubt else ""
        shell.print(
            f"request {row.request_id or '-'}: {row.outcome}{doubt} "
            f"at {row.finished_at or '-'} key {row.key}"
            + (f" profile {row.profile_id}" if row.profile_id else "")
        )
    return 0 if result.erased else 1


def cmd_sandbox(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure.sandbox.cli import run

    return run(args)


# ---------------------------------------------------------------- after the delete (issue 15)


def _after_the_delete(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The parsers of keygen, receipt, check-receipt, screen and sweep."""
    p = _command(
        sub,
        "keygen",
        "Make a new Ed25519 signing key for receipts at PATH (owner-only PEM) and its "
        "public key at PATH.pub. Never overwrites a file.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="the private key")
    p.add_argument(
        "--ledger-key",
        type=Path,
        metavar="PATH",
        help="also write a new random ledger key (64 hex digits, owner-only) to PATH",
    )

    p = _command(
        sub,
        "receipt",
        "Write one request's signed erasure receipt: .json (the signed document) or .html "
        "(a page embedding it). Checks the ledger's chain first.",
    )
    p.add_argument("--request-id", required=True, metavar="ID", help="the request (DSR ticket)")
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="receipt.json or .html")

    p = _command(
        sub,
        "check-receipt",
        "Check a receipt's signature; with --job also that the ledger's events up to its "
        "head say what it says. Needs no secret. Exit 0 valid, 1 not valid, 65 not a receipt.",
    )
    p.add_argument("receipt", type=Path, metavar="RECEIPT", help="the .json or .html receipt")
    p.add_argument(
        "--public-key", type=Path, required=True, metavar="PATH", help="the signer's PATH.pub"
    )
    p.add_argument("--job", type=Path, metavar="JOB", help="check against this job's ledger")

    p = _command(
        sub,
        "screen",
        "Before an import: copy the input file's rows to --out (same format) less every row "
        "naming a person whose erasure finished. Exit 1 when cells could not be checked.",
    )
    p.add_argument("--input", type=Path, required=True, metavar="PATH", help="the file to import")
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="the screened copy")

    p = _command(
        sub,
        "sweep",
        "After a restore or a sync: find profiles of an Altcraft export that came back after "
        "a finished erasure; delete those with an erased profile id again, list the rest. "
        "Exit 1 when anything reappeared or waits.",
    )
    p.add_argument("--export", type=Path, required=True, metavar="PATH", help="the export file")
    p.add_argument("--dry-run", action="store_true", help="only count; record and send nothing")
    p.add_argument(
        "--include-identifier-matches",
        action="store_true",
        help="delete profiles that only share an identifier with an erased request too",
    )
    _output_arguments(p)


def cmd_keygen(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    made = app.keygen(args.out, args.ledger_key)
    shell.print(
        f"signing key: {made.private_path} (owner-only; set [receipts] signing_key_file)",
        f"public key: {made.public_path} (hand it to whoever checks receipts)",
        f"public key sha256: {made.fingerprint}",
    )
    if made.ledger_key is not None:
        shell.print(f"ledger key: {made.ledger_key} (owner-only; set [ledger] key_file)")
    return 0


def cmd_receipt(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app
    from erasure.receipts import verdict

    signed = app.receipt(_load(args), args.request_id, args.out)
    shell.print(
        f"receipt: {args.out}",
        verdict(signed.receipt),
        f"signed by sha256:{signed.signature.public_key_sha256}",
    )
    return 0


def cmd_check_receipt(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app
    from erasure import job as job_mod

    job = job_mod.load(args.job) if args.job is not None else None
    result = app.check_receipt(args.receipt, args.public_key, job)
    shell.print(result.message)
    return 0 if result.valid else 1


def cmd_screen(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    result = app.screen(_load(args), args.input, args.out)
    shell.print(
        f"kept: {result.kept}",
        f"screened: {result.screened}",
        f"unchecked: {result.unchecked}"
        + (" (kept: cells that could not be normalised)" if result.unchecked else ""),
        f"out: {result.out}",
    )
    return 1 if result.unchecked else 0


def cmd_sweep(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app, logs
    from erasure.run import Options

    fmt = logs.choose_format(args.log_format)
    logs.configure(fmt)
    shell.json_errors = fmt == "json"
    progress = not args.no_progress and fmt == "console" and shell.err.isatty()
    result = app.sweep(
        _load(args),
        args.export,
        dry_run=args.dry_run,
        include_identifier_matches=args.include_identifier_matches,
        options=Options(progress=progress),
    )
    summary = result.summary
    if summary is not None and summary.fatal is not None:
        shell.fail(str(summary.fatal), result.exit_code)
    for m in result.matches:
        shell.print(
            f"row {m.row}: profile {m.profile_id} reappeared ({m.match} match, request "
            f"{m.request_id or '-'}, first erased at event {m.first_erased_seq}): {m.decision}"
            + (" (listed before)" if m.listed_before else "")
        )
    by_pid = sum(1 for m in result.matches if m.match == "profile_id")
    shell.print(
        f"profiles in export: {result.rows}",
        f"reappeared: {len(result.matches)} ({by_pid} by profile id, "
        f"{len(result.matches) - by_pid} by identifier only)",
        f"deleted again: {result.deleted}" + (" (dry run: nothing sent)" if result.dry_run else ""),
        f"waiting for a decision: {result.waiting}",
    )
    if summary is not None:
        o = summary.as_dict()["outcomes"]
        shell.print(
            f"run {summary.run}: erased {o['erased']}, not found {o['not_found']}, "
            f"rejected {o['rejected']}, failed {o['failed']}, pending {summary.pending}"
        )
    code = int(result.exit_code)
    shell.print(f"exit {code}: {_SWEEP_MEANINGS.get(code, MEANINGS.get(code, ''))}")
    return code


_SWEEP_MEANINGS = {
    0: "nothing came back",
    1: "erased profiles reappeared or wait for a decision: a person must look",
}


COMMANDS: dict[str, Callable[[argparse.Namespace, _Shell], int]] = {
    "validate": cmd_validate,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "verify": cmd_verify,
    "archive": cmd_archive,
    "lookup": cmd_lookup,
    "sandbox": cmd_sandbox,
    "keygen": cmd_keygen,
    "receipt": cmd_receipt,
    "check-receipt": cmd_check_receipt,
    "screen": cmd_screen,
    "sweep": cmd_sweep,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
