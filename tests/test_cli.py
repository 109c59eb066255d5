"""The command line: its argument types, its help, and bad usage as one line and 64.

Parsing only: what each command does is tested in the modules that own it
(test_run.py, test_readonly_commands.py, test_report.py, ...).
"""

from __future__ import annotations

import argparse
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from erasure import __version__, cli

MOSCOW = timezone(timedelta(hours=3))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("45m", 2700.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h0m5s", 3605.0),
        (" 10m ", 600.0),
        ("100m", 6000.0),  # no carrying rule: 100 minutes is 100 minutes
    ],
)
def test_duration_takes_the_contract_s_forms(text: str, seconds: float) -> None:
    assert seconds == cli.duration(text)


@pytest.mark.parametrize(
    "text", ["", "90", "2 hours", "1.5h", "h", "-5m", "30m1h", "0s", "0h0m", "1d"]
)
def test_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.duration(text)


@pytest.mark.parametrize(
    ("text", "hm"), [("06:00", (6, 0)), ("6:05", (6, 5)), ("23:59", (23, 59)), ("00:00", (0, 0))]
)
def test_clock_time_reads_a_local_time(text: str, hm: tuple[int, int]) -> None:
    assert hm == cli.clock_time(text)


@pytest.mark.parametrize("text", ["24:00", "6:60", "0600", "6", "noon", "", "06:00:00", "-1:00"])
def test_clock_time_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a local time"):
        cli.clock_time(text)


@pytest.mark.parametrize(
    ("now", "at", "seconds"),
    [
        (datetime(2026, 1, 1, 7, 0, tzinfo=MOSCOW), (6, 0), 23 * 3600),  # passed today: tomorrow
        (datetime(2026, 1, 1, 7, 0, tzinfo=MOSCOW), (8, 0), 3600),
        (datetime(2026, 1, 1, 7, 0, tzinfo=MOSCOW), (7, 0), 24 * 3600),  # now is not "next"
        (datetime(2026, 1, 1, 5, 59, 30, tzinfo=MOSCOW), (6, 0), 30),
        (datetime(2026, 12, 31, 23, 30, tzinfo=MOSCOW), (0, 15), 45 * 60),  # over the year's end
    ],
)
def test_seconds_until_the_next_occurrence(
    now: datetime, at: tuple[int, int], seconds: float
) -> None:
    assert seconds == cli.seconds_until(*at, now)


def test_run_s_options_parse_into_seconds_and_a_clock_time() -> None:
    args = cli.build_parser().parse_args(
        ["run", "j.toml", "--max-duration", "1h30m", "--stop-at", "06:00", "--dry-run"]
    )
    assert (Path("j.toml"), 5400.0, (6, 0), True, False, None) == (
        args.job,
        args.max_duration,
        args.stop_at,
        args.dry_run,
        args.retry_rejected,
        args.log_format,
    )


def _examples(help_text: str) -> list[str]:
    """The example command lines of a help text (the part after a pipe, if any).

    They are the indented lines after an ``Example:`` or ``examples:`` heading.
    """
    lines = help_text.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.lower() in ("example:", "examples:"))
    found = []
    for line in lines[heading + 1 :]:
        if not line.startswith("  "):
            break
        found.append(line.rpartition("| ")[2].strip())
    return found


@pytest.mark.parametrize("command", sorted(cli.handlers()))
def test_every_command_s_help_ends_with_an_example_that_parses(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert 0 == info.value.code
    examples = _examples(capsys.readouterr().out)
    assert examples
    for example in map(shlex.split, examples):
        assert ["erasure", command] == example[:2]
        with_sandbox = command == "sandbox"
        args = cli.build_parser(with_sandbox=with_sandbox).parse_args(example[1:])  # else 64
        assert command == args.command


def test_the_top_level_help_has_an_example_and_version_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert 0 == info.value.code
    out = capsys.readouterr().out
    assert ["erasure validate jobs/demo.toml && erasure run jobs/demo.toml"] == _examples(out)
    for command in cli.handlers():
        assert command in out
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert (0, f"erasure {__version__}") == (info.value.code, capsys.readouterr().out.strip())


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run"], "the following arguments are required: JOB"),
        (["run", "j.toml", "--max-duration", "2 hours"], "'2 hours' is not a duration"),
        (["run", "j.toml", "--stop-at", "25:00"], "'25:00' is not a local time"),
        (["run", "j.toml", "--log-format", "xml"], "invalid choice: 'xml'"),
        (["status", "j.toml", "--bogus"], "unrecognized arguments: --bogus"),
        (["report", "j.toml"], "the following arguments are required: --out"),
        (["lookup", "j.toml"], "one of the arguments --email --phone"),
        (["lookup", "j.toml", "--email", "a@b.c", "--phone", "1"], "not allowed with argument"),
        (["lookup", "j.toml", "--email", "a@b.c", "--db-id", "one"], "invalid int value: 'one'"),
    ],
)
def test_bad_usage_is_one_line_and_64(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not argparse's 2 and its usage block: 64 (EX_USAGE) and one line that says why."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert 64 == info.value.code
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("erasure: error: ") and says in line, line
    assert line.endswith("--help)")  # where to read the usage
    assert "" == captured.out
