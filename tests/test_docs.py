"""Docs that tests keep true: every command has help with an example and is in
the README; every job file in jobs/ parses; the exit codes table matches."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
import re
import shutil
import socket
import subprocess
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.handlers())


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


def _sh_lines() -> list[str]:
    """Every command line of the README's ``sh`` blocks, in order (``make`` lines aside:
    the Makefile's targets are checked above, and ``make test`` would run this test)."""
    lines = []
    for block in re.findall(r"^```sh\n(.*?)^```", README, re.M | re.S):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith(("#", "make ")):
                lines.append(line)
    return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    """The README's commands, in order, in one shell, in a copy of the checkout.

    Nothing is substituted but the sandbox's port (in the commands that start
    one and in the job files' base_url): ports 8787/8788 may be taken here.
    Each command must end 0 or 1 (1: the sample's invalid rows, a lookup of a
    stranger) and never with a traceback.
    """
    for folder in ("jobs", "sample_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    ports = {"8787": str(_free_port()), "8788": str(_free_port())}
    for job in (tmp_path / "jobs").glob("*.toml"):
        text = job.read_text(encoding="utf-8")
        job.write_text(text.replace("127.0.0.1:8787", f"127.0.0.1:{ports['8787']}"), "utf-8")
    lines = _sh_lines()
    script = []
    for i, line in enumerate(lines):
        for old, new in ports.items():
            line = line.replace(f"--port {old}", f"--port {new}")
        if line.split("#")[0].rstrip().endswith("&"):
            # a server: started as written, then the script waits until it listens
            script += [
                f"{line.split('&')[0]} > out{i} 2> err{i} &",
                "echo 0 > rc" + str(i),
                f"for _ in $(seq 200); do grep -q listening out{i} && break; sleep 0.05; done",
            ]
            continue
        script += ["{", line, f"}} > out{i} 2> err{i}", f"echo $? > rc{i}"]
    script.append("kill $(jobs -p) 2>/dev/null; wait; echo done > finished")
    env = {k: v for k, v in os.environ.items() if k not in ("ALTCRAFT_TOKEN", "ERASURE_LEDGER_KEY")}
    env["PATH"] = "/usr/bin:/bin"  # erasure comes from the README's own activate line
    subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, timeout=300, check=True
    )
    assert (tmp_path / "finished").exists()
    codes = {}
    for i, line in enumerate(lines):
        code = int((tmp_path / f"rc{i}").read_text())
        err = (tmp_path / f"err{i}").read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in err, (line, err)
        assert code in (0, 1), (line, code, err)
        codes[line] = code
    validate = next(c for line, c in codes.items() if line.startswith("erasure validate"))
    assert validate == 1  # the sample file's invalid rows, on purpose
    assert (tmp_path / "report.html").stat().st_size > 0
    assert (tmp_path / "rejects.xlsx").exists()
    assert (tmp_path / "requests-ledger.sqlite").exists()


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_job_s_try_it_by_hand_lines_match_the_demo() -> None:
    """After `make demo`, jobs/demo.toml reads the demo's file and opens its ledger with
    the key its comment names (another key is refused with 78)."""
    demo = _demo()
    text = (ROOT / "jobs" / "demo.toml").read_text(encoding="utf-8")
    assert f"ERASURE_LEDGER_KEY={demo.LEDGER_KEY}" in text
    job = job_mod.load(ROOT / "jobs" / "demo.toml")
    assert job.input.path == demo.REQUESTS
    assert job.ledger.path == demo.OUT / "ledger.sqlite"


def test_the_demo_s_dates_are_recent_with_one_late_request(tmp_path: Path) -> None:
    today = date(2031, 3, 9)
    out = _demo().requests_as_of(today, out=tmp_path / "requests.csv")
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    ages: dict[str, int] = {}
    for row in rows:
        for spelling in ("%d.%m.%Y", "%Y-%m-%d"):
            with contextlib.suppress(ValueError):
                ages[row["ticket"]] = (
                    today - datetime.strptime(row["received_at"], spelling).date()
                ).days
    assert len(ages) > 100  # the sample's dates, each in its own spelling
    late = {ticket for ticket, age in ages.items() if age > 30}
    assert late == {"DSR-20240002"}
    assert all(0 < age <= 28 for ticket, age in ages.items() if ticket not in late)
    assert "вчера" in {row["received_at"] for row in rows}  # not a date: left as it was


def test_the_demo_uses_its_own_secrets_whatever_the_shell_holds() -> None:
    """A real token or ledger key exported in the operator's shell never reaches the demo."""
    demo = _demo()
    env = demo.demo_env({"ALTCRAFT_TOKEN": "a-real-token", "ERASURE_LEDGER_KEY": "mine", "X": "1"})
    mine = {"ALTCRAFT_TOKEN": "sandbox-token", "ERASURE_LEDGER_KEY": demo.LEDGER_KEY, "X": "1"}
    assert env == mine
