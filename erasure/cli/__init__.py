"""The shell: arguments in, exit codes out.

The only package that knows about exit codes, standard streams and the
terminal. It parses the command line, calls the use case in
:mod:`erasure.app`, prints its result, and turns every
:class:`~erasure.errors.ErasureError` into one line on stderr
(``erasure: error: ...``) and its family's exit code; nothing else escapes
as a traceback except a genuine bug.

The commands live in groups, one module each under ``erasure/cli/``
(:data:`GROUPS`); what they share (the parser class, :func:`_command`, the
shell) is :mod:`erasure.cli.base`, re-exported here.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from erasure import __version__
from erasure.cli.base import (
    EXAMPLES,
    Handler,
    SubParsers,
    _command,
    _input_arguments,
    _load,
    _output_arguments,
    _Parser,
    _Shell,
    clock_time,
    duration,
    seconds_until,
)
from erasure.errors import ErasureError, ExitCode, ExtraMissing

__all__ = [
    "EXAMPLES",
    "GROUPS",
    "Handler",
    "SubParsers",
    "_Parser",
    "_Shell",
    "_command",
    "_input_arguments",
    "_load",
    "_output_arguments",
    "build_parser",
    "clock_time",
    "duration",
    "handlers",
    "main",
    "seconds_until",
]

# Command groups, each a module of its own under erasure/cli/ with
# ``register(sub)`` (adds its parsers, using :func:`_command`) and
# ``HANDLERS: dict[str, Handler]``. Add a group by adding its module's name
# here; `erasure --help` lists the commands in this order, sandbox last.
GROUPS: tuple[str, ...] = ("run", "read", "after", "law", "foureyes", "maintenance", "keep")


def _groups() -> list[ModuleType]:
    return [importlib.import_module(f"erasure.cli.{name}") for name in GROUPS]


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
    for group in _groups():
        group.register(sub)

    p = _command(
        sub, "sandbox", "A local Altcraft-compatible server for trying jobs and for tests."
    )
    if with_sandbox:
        # the sandbox's server stack loads only for the sandbox command
        _sandbox_cli().add_arguments(p)
    return parser


# What the extra erasure[sandbox] installs (pyproject.toml), by module name.
SANDBOX_EXTRA = frozenset({"uvicorn", "httptools"})


def _sandbox_cli() -> ModuleType:
    """:mod:`erasure.sandbox.cli`; :class:`ExtraMissing` when its extra is not installed."""
    try:
        return importlib.import_module("erasure.sandbox.cli")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in SANDBOX_EXTRA:
            raise
        raise ExtraMissing(
            f"the sandbox is not installed: pip install 'erasure[sandbox]' (missing {missing})"
        ) from None


def cmd_sandbox(args: argparse.Namespace, shell: _Shell) -> int:
    run: Callable[[argparse.Namespace], int] = _sandbox_cli().run
    return run(args)


def handlers() -> dict[str, Handler]:
    """Every command's handler: each group's, and the sandbox's."""
    found: dict[str, Handler] = {}
    for group in _groups():
        found.update(group.HANDLERS)
    found["sandbox"] = cmd_sandbox
    return found


# A command an error tells its user to run, as the code below the CLI words it (it
# knows no job path): `erasure verify JOB`, `erasure migrate JOB`.
_NAMED_COMMAND = re.compile(r"`erasure ([a-z-]+) JOB`")


def _with_job(message: str, job: object) -> str:
    """``message`` with each command it names given the job file this one was given, quoted
    for the shell, so that the line can be pasted whole."""
    if job is None:
        return message
    return _NAMED_COMMAND.sub(lambda m: f"`erasure {m[1]} {shlex.quote(str(job))}`", message)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    shell = _Shell(sys.stdin, sys.stdout, sys.stderr)
    args: argparse.Namespace | None = None
    try:
        args = build_parser(with_sandbox=bool(argv) and argv[0] == "sandbox").parse_args(argv)
        handler: Handler = handlers()[args.command]
        code = handler(args, shell)
        shell.flush()  # a full stdout (`status > /dev/full`) is 74, not a failure at exit
        return code
    except ErasureError as exc:
        shell.fail(_with_job(str(exc), getattr(args, "job", None)), exc.exit_code)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        shell.fail("interrupted", ExitCode.TEMPFAIL)
        return int(ExitCode.TEMPFAIL)
    except Exception as exc:  # a bug: one line naming its type, never its message (data)
        shell.fail(
            f"internal error: {type(exc).__name__} (a bug; please report it)", ExitCode.SOFTWARE
        )
        return int(ExitCode.SOFTWARE)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
