"""The shell: arguments in, exit codes out.

The only module that knows about exit codes, standard streams and the
terminal. Every :class:`~erasure.errors.ErasureError` becomes one line on
stderr (``erasure: error: ...``) and its exit code; nothing else escapes as
a traceback except a genuine bug.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from erasure import __version__
from erasure.errors import MEANINGS, ErasureError, ExitCode, OutputError, UsageError

EXAMPLES = {
    "validate": "erasure validate jobs/demo.toml --rejects /tmp/rejects.csv",
    "run": "erasure run jobs/nightly.toml --max-duration 2h --log-format json",
    "status": "erasure status jobs/demo.toml --json",
    "report": "erasure report jobs/demo.toml --out report.html",
    "verify": "erasure verify jobs/demo.toml",
    "lookup": "echo 'ivan@example.com' | erasure lookup jobs/demo.toml --email -",
    "sandbox": "erasure sandbox --port 8080 --profiles sample_data/profiles.csv",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr and exits 64 (EX_USAGE), not 2."""

    def error(self, message: str) -> NoReturn:
        # One line, as for every other error (the contract); the usage is a --help away.
        self.exit(ExitCode.USAGE, f"erasure: error: {message} (see: {self.prog} --help)\n")


def _command(sub: argparse._SubParsersAction[_Parser], name: str, help_text: str) -> _Parser:
    parser: _Parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"Example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if name != "sandbox":
        parser.add_argument("job", type=Path, metavar="JOB", help="the TOML job file")
    return parser


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


def _input_arguments(parser: _Parser) -> None:
    parser.add_argument("--input", type=Path, help="the input file (overrides [input] path)")
    parser.add_argument("--rejects", type=Path, help="where to write rejected rows (CSV)")


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
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    p.add_argument(
        "--log-format",
        choices=("json", "console"),
        help="json: one JSON object per stderr line (default when stderr is not a TTY)",
    )

    p = _command(sub, "status", "Counts by outcome from the ledger, pending, in doubt, last run.")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = _command(sub, "report", "Write the compliance report: .csv, .parquet, .xlsx or .html.")
    p.add_argument(
        "--out", type=Path, required=True, help="the report file; its suffix picks the format"
    )

    _command(
        sub,
        "verify",
        "Check the ledger's keyed hash chain; name the first broken "
        "event; print the chain head. Exit 0 intact, 1 broken.",
    )

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

    p = _command(
        sub, "sandbox", "A local Altcraft-compatible server for trying jobs and for tests."
    )
    if with_sandbox:
        # the sandbox's server stack loads only for the sandbox command
        from erasure.sandbox.cli import add_arguments

        add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_sandbox=bool(argv) and argv[0] == "sandbox").parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    global _json_errors
    _json_errors = False  # until `run` chooses JSON logs
    try:
        return handler(args)
    except ErasureError as exc:
        _fail(str(exc), exc.exit_code)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.TEMPFAIL)
        return int(ExitCode.TEMPFAIL)


# Set by `run` under --log-format json, where every stderr line is one JSON object.
_json_errors = False


def _fail(message: str, code: int) -> None:
    """The one line on stderr that says why the command failed."""
    if _json_errors:
        from datetime import UTC

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
    print(line, file=sys.stderr)


def _load(args: argparse.Namespace) -> Any:
    from erasure import job as job_mod

    return job_mod.load(args.job)


def _keyer(job: Any) -> Any:
    from erasure.keys import Keyer

    return Keyer(job.ledger_key())


# ---------------------------------------------------------------- validate / run


def _intake(job: Any, keyer: Any, args: argparse.Namespace) -> Any:
    from erasure import intake

    if args.input is None and job.input.path is None:
        raise UsageError("no input file: set [input] path in the job file or pass --input")
    data = intake.read(job, keyer, args.input)
    if data.rejects.height:
        rejects = args.rejects or job.rejects_path
        try:
            rejects.parent.mkdir(parents=True, exist_ok=True)
            intake.write_rejects(data.rejects, rejects)
        except OSError as exc:
            raise OutputError(f"cannot write the rejects file {rejects}: {exc.strerror}") from None
        data_rejects_path: Path | None = rejects
    else:
        data_rejects_path = None
    return data, data_rejects_path


def _plan(job: Any, keyer: Any, items: Any, retry_rejected: bool, db: Any = None) -> Any:
    import polars as pl

    from erasure import ledger as ledger_mod
    from erasure import plan as plan_mod

    if db is None:
        if not job.ledger.path.exists():
            empty = pl.DataFrame(
                schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}
            )
            return plan_mod.make(items, empty, set())
        with closing(ledger_mod.open_readonly(job.ledger.path)) as ro:
            ledger_mod.check_meta(ledger_mod.read_meta(ro), keyer, job.ledger.path)
            return _plan(job, keyer, items, retry_rejected, ro)
    finished = ledger_mod.finished_pairs(db, retry_rejected=retry_rejected)
    return plan_mod.make(items, finished, ledger_mod.doubtful_keys(db))


def _print_counts(data: Any, plan: Any, rejects: Path | None) -> None:
    c = data.counts
    lines = [
        ("input", str(data.path)),
        ("rows", c.rows),
        ("identifiers", c.identifiers),
        ("valid", c.valid),
        ("rejected", c.rejected),
        ("duplicates", c.duplicates),
        ("already done", plan.already_done),
        ("to send", plan.to_send),
    ]
    if plan.in_doubt:
        lines.append(("in doubt (sent again)", plan.in_doubt))
    if rejects is not None:
        lines.append(("rejects file", str(rejects)))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k + ':':<{width + 1}} {v}")


def cmd_validate(args: argparse.Namespace) -> int:
    job = _load(args)
    keyer = _keyer(job)
    data, rejects = _intake(job, keyer, args)
    plan = _plan(job, keyer, data.items, retry_rejected=False)
    _print_counts(data, plan, rejects)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from erasure import logs

    global _json_errors
    fmt = logs.choose_format(args.log_format)
    logs.configure(fmt)
    _json_errors = fmt == "json"
    log = logs.get()
    job = _load(args)
    keyer = _keyer(job)
    token = None if args.dry_run else job.token()
    deadline = None
    if args.max_duration is not None:
        deadline = time.monotonic() + args.max_duration
    if args.stop_at is not None:
        at = time.monotonic() + seconds_until(*args.stop_at)
        deadline = at if deadline is None else min(deadline, at)
    if args.dry_run:
        data, rejects = _intake(job, keyer, args)
        plan = _plan(job, keyer, data.items, args.retry_rejected)
        _print_counts(data, plan, rejects)
        print("dry run: nothing was sent")
        return 0
    assert token is not None
    return _execute(job, keyer, token, args, fmt, deadline, log)


def _execute(
    job: Any,
    keyer: Any,
    token: str,
    args: argparse.Namespace,
    fmt: str,
    deadline: float | None,
    log: Any,
) -> int:
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from erasure import ledger as ledger_mod
    from erasure import plan as plan_mod
    from erasure import runner

    # The lock first: a second run exits 75 before reading anything.
    with ledger_mod.Ledger(
        job.ledger.path, keyer, max_pages=ledger_mod.max_pages_from_env()
    ) as ledger:
        # What the ledger knows is read while the input is read: all three
        # mostly wait in SQLite or polars, outside the GIL (1-3 s each for a
        # million rows). The in-doubt query gets its own read-only connection.
        with (
            ThreadPoolExecutor(max_workers=2) as pool,
            closing(ledger_mod.open_readonly(job.ledger.path)) as reader,
        ):
            done = pool.submit(
                ledger_mod.finished_pairs, ledger.connection, retry_rejected=args.retry_rejected
            )
            doubt = pool.submit(ledger_mod.doubtful_keys, reader)
            try:
                data, _ = _intake(job, keyer, args)
            finally:
                finished, doubtful = done.result(), doubt.result()
        plan = plan_mod.make(data.items, finished, doubtful)
        input_info = {
            "path": str(data.path),
            "sha256": data.sha256,
            "rows": data.counts.rows,
            "rejected": data.counts.rejected,
        }
        # The run needs only the plan's work frame: let the intake's items and
        # the pending pairs go. The work often shares their keys and values
        # (see erasure.plan); the rest, such as the row numbers, is freed.
        del data, finished
        plan = plan.without_pending()
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
        progress = not args.no_progress and fmt == "console" and sys.stderr.isatty()
        r = runner.Runner(
            job,
            plan,
            ledger,
            run_no,
            token,
            runner.Options(deadline=deadline, progress=progress),
            input_info=input_info,
        )
        summary = anyio.run(r.execute, backend_options=_loop_options())
        code = summary.exit_code()
        try:
            ledger.append([runner.finish_event(run_no, summary, code)])
        except ErasureError as exc:
            if summary.fatal is None:
                summary.fatal = exc
            code = summary.exit_code()
    log.info("erasure.run.finished", **summary.as_dict(), exit_code=int(code))
    if summary.fatal is not None:
        _fail(str(summary.fatal), code)
    elif summary.stop_detail and summary.stop_reason in ("token", "unavailable", "ledger"):
        _fail(summary.stop_detail, code)
    if fmt != "json":
        _print_summary(summary, code, job)
    return int(code)


def _loop_options() -> dict[str, Any]:
    """uvloop where it is installed: the event loop is a third of a request's CPU."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - Windows, or a trimmed install
        return {}
    return {"use_uvloop": True}


def _print_summary(summary: Any, code: int, job: Any) -> None:
    o = summary.outcomes
    rate = summary.requests / summary.duration_s if summary.duration_s > 0 else 0.0
    print(
        f"run {summary.run}: erased {o['erased']}, not found {o['not_found']}, "
        f"rejected {o['rejected']}, failed {o['failed']}, pending {summary.pending}"
        f" (in doubt {summary.in_doubt}); {summary.requests} requests in "
        f"{summary.duration_s:.1f} s ({rate:.0f}/s)"
    )
    print(f"ledger: {job.ledger.path}")
    print(f"report: erasure report {job.path} --out report.html")
    print(f"exit {int(code)}: {MEANINGS.get(int(code), '')}")


# ---------------------------------------------------------------- read-only


def _readonly(job: Any) -> Any:
    from erasure import ledger as ledger_mod

    return closing(ledger_mod.open_readonly(job.ledger.path))


def cmd_status(args: argparse.Namespace) -> int:
    from erasure import status as status_mod

    job = _load(args)
    with _readonly(job) as db:
        info = status_mod.status(db)
    if args.json:
        print(json.dumps(info, default=str, sort_keys=True))
        return 0
    print(f"ledger: {job.ledger.path}")
    print(f"total: {info['total']} (request id, identifier) pairs")
    for name in ("erased", "not_found", "rejected", "failed", "pending"):
        print(f"  {name}: {info[name]}")
    print(f"in doubt: {info['in_doubt']}")
    print(f"overdue: {info['overdue']}")
    last = info["last_run"]
    if last:
        print(
            f"last run: {last['run']} started {last['started_at']}, "
            f"finished {last['finished_at'] or 'never (killed or still running)'}, "
            f"exit {last['exit_code']}; pending from its plan: {info['last_run_pending']}"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from erasure import report

    job = _load(args)
    with _readonly(job) as db:
        report.write(db, job, args.out)
    print(f"report: {args.out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from erasure import ledger as ledger_mod

    job = _load(args)
    verdict = ledger_mod.verify(job.ledger.path, _keyer(job))
    if verdict.ok:
        print(f"ledger intact: {verdict.events} events")
    else:
        print(f"ledger BROKEN: {verdict.problem}")
    print(f"chain head: event {verdict.head_seq} {verdict.head_link}")
    return 0 if verdict.ok else 1


def cmd_lookup(args: argparse.Namespace) -> int:
    from erasure import status as status_mod
    from erasure.lookup import keys_for

    job = _load(args)
    keyer = _keyer(job)
    # argparse makes exactly one of them required
    matching, raw = next(
        (mode, value)
        for mode, value in (
            ("email", args.email),
            ("phone", args.phone),
            ("profile_id", args.profile_id),
            ("custom", args.field_value),
        )
        if value is not None
    )
    if raw == "-":
        raw = sys.stdin.readline().rstrip("\r\n")
    keys = keys_for(job, keyer, matching, raw, db_id=args.db_id, resource_id=args.resource_id)
    with _readonly(job) as db:
        rows = status_mod.lookup(db, keys)
    if rows.height == 0:
        print(f"not in the ledger (key {keys[0]})")
        return 1
    for row in rows.iter_rows(named=True):
        doubt = " (in doubt)" if row["in_doubt"] else ""
        print(
            f"request {row['request_id'] or '-'}: {row['outcome']}{doubt} "
            f"at {row['finished_at'] or '-'} key {row['key']}"
            + (f" profile {row['profile_id']}" if row["profile_id"] else "")
        )
    return 0 if status_mod.erased_or_gone(rows) else 1


def cmd_sandbox(args: argparse.Namespace) -> int:
    from erasure.sandbox.cli import run

    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "verify": cmd_verify,
    "lookup": cmd_lookup,
    "sandbox": cmd_sandbox,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
