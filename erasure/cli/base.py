"""What every command group shares: the parser class, ``_command``, the shell, the job loader.

The command groups (:mod:`erasure.cli.run`, :mod:`erasure.cli.read`,
:mod:`erasure.cli.after`, and any new one) import from here, and
:mod:`erasure.cli` re-exports it, so no module of the package imports its
own package's ``__init__``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO, TypeAlias

from erasure.errors import ExitCode, OutputError
from erasure.terminal import visible

if TYPE_CHECKING:
    from erasure.job import Job, Matching

EXAMPLES = {
    "validate": "erasure validate jobs/demo.toml --rejects /tmp/rejects.csv",
    "run": "erasure run jobs/nightly.toml --max-duration 2h --log-format json",
    "status": "erasure status jobs/demo.toml --json",
    "report": "erasure report jobs/demo.toml --out report.html",
    "verify": 'erasure verify jobs/demo.toml --from "$(cat last-head.txt)"',
    "archive": "erasure archive jobs/demo.toml --before 2024-01-01 --out archive-2023.sqlite",
    "lookup": "echo 'ivan@example.com' | erasure lookup jobs/demo.toml --email -",
    "sandbox": "erasure sandbox --port 8080 --profiles sample_data/profiles.csv",
    "keygen": "erasure keygen --out secrets/receipts.key --ledger-key secrets/ledger.key "
    "--identifier-key secrets/lookup.idkey",
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


SubParsers: TypeAlias = "argparse._SubParsersAction[_Parser]"  # what register(sub) is given


def _command(
    sub: SubParsers,
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


def identifier_arguments(
    parser: _Parser, which: argparse._MutuallyExclusiveGroup, whose: str = ""
) -> None:
    """One identifier (``--email``, ``--phone``, ``--profile-id``, ``--field-value``, in
    ``which``) and where to match it (``--db-id``, ``--resource-id``): lookup's and a hold's.

    ``whose`` says what the value selects, for the help. A value of ``-`` is read from
    standard input (:func:`identifier_given`), so that it stays out of the shell's history.
    """
    for flag, metavar, what in (
        ("email", "E", "an email address"),
        ("phone", "P", "a phone number"),
        ("profile-id", "ID", "an Altcraft profile id"),
        ("field-value", "V", "a custom field's value"),
    ):
        selects = f": {whose}" if whose else ""
        which.add_argument(f"--{flag}", metavar=metavar, help=f"{what}{selects} (- reads stdin)")
    parser.add_argument(
        "--db-id", type=int, metavar="N", help="the database (default: the job's db_id)"
    )
    parser.add_argument(
        "--resource-id", type=int, metavar="N", help="the resource (default: the job's)"
    )


def identifier_given(args: argparse.Namespace, shell: _Shell) -> tuple[Matching, str]:
    """The matching mode and value :func:`identifier_arguments` were given (argparse makes
    exactly one required); ``-`` is the first line of standard input."""
    given: list[tuple[Matching, str | None]] = [
        ("email", args.email),
        ("phone", args.phone),
        ("profile_id", args.profile_id),
        ("custom", args.field_value),
    ]
    matching, raw = next((mode, value) for mode, value in given if value is not None)
    if raw == "-":
        raw = shell.stdin.readline().rstrip("\r\n")
    return matching, raw


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


class _Shell:
    """One invocation's standard streams and how errors are written to stderr."""

    def __init__(self, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.stdin = stdin
        self.out = stdout
        self.err = stderr
        self.json_errors = False  # `run` under --log-format json: every stderr line is JSON

    def print(self, *lines: str) -> None:
        """Each line on stdout, its control characters escaped (text from files reaches it)."""
        try:
            for line in lines:
                print(visible(line), file=self.out)
        except OSError as exc:
            self._lost(exc)

    def flush(self) -> None:
        """Push stdout out now, so that a full disk or a closed pipe is an exit code (74)."""
        try:
            self.out.flush()
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> NoReturn:
        # Python flushes stdout once more at exit: aim it at /dev/null first, so
        # that the one line on stderr stays the only word about it
        with suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from None

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
            line = f"erasure: error: {visible(message)}"
        print(line, file=self.err)


Handler: TypeAlias = Callable[[argparse.Namespace, _Shell], int]


def _load(args: argparse.Namespace) -> Job:
    from erasure import job

    return job.load(args.job)
