"""Docs that tests keep true: every command has help with an example and is in
the README; every job file in jobs/ parses; the exit codes table matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert 0 == info.value.code
    out = capsys.readouterr().out
    assert "Example" in out or "example" in out
    assert f"erasure {command}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    assert re.search(rf"erasure {command}\b", README), f"README never shows `erasure {command}`"


@pytest.mark.parametrize("path", sorted((ROOT / "jobs").glob("*.toml")), ids=lambda p: p.name)
def test_every_job_file_parses(path: Path) -> None:
    job = job_mod.load(path)
    assert job.api.base_url


def test_readme_lists_every_exit_code() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", README, re.M), f"exit code {int(code)}"


def test_makefile_has_the_documented_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "test-long", "lint", "demo", "bench"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M)
