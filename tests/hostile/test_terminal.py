"""Text that reaches a terminal is escaped; stdout that cannot be written is 74; a malformed
proxy is 78 (findings: request ids reached the terminal raw, so a ticket could set the
title, clear the screen or forge lines with `\\n`; `status > /dev/full` and a malformed
`HTTPS_PROXY` exited 70).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import cli
from erasure.terminal import visible
from tests import e2e
from tests.hostile.conftest import Finished
from tests.sandbox_fixture import Sandbox

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_ID = "T1\x1b]0;owned\x07\x1b[2J\nledger intact: 999 events\u202e"


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def test_visible_escapes_every_control_character_and_keeps_plain_text() -> None:
    assert visible("plain text, tabs\tand ünïcode") == "plain text, tabs\tand ünïcode"
    shown = visible(HOSTILE_ID)
    assert "\n" not in shown and not _raw_controls(shown) and "\u202e" not in shown
    assert shown == "T1\\x1b]0;owned\\x07\\x1b[2J\\nledger intact: 999 events\\u202e"


def test_request_ids_and_reasons_reach_the_terminal_escaped(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    quoted = HOSTILE_ID.replace('"', '""')
    source.write_text(f'ticket,email\n"{quoted}",not-an-email\nT2,user2@example.com\n')
    job = write_job(input={"path": "in.csv", "request_id_column": "ticket"})
    capsys.readouterr()
    assert 1 == cli.main(["validate", str(job)])
    out = capsys.readouterr().out
    assert not _raw_controls(out)
    assert not any(line.startswith("ledger intact") for line in out.splitlines())
    assert "T1\\x1b]0;owned" in out


def test_column_names_in_error_messages_are_escaped(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("ticket,\x1b[2Jmail\nT1,a@b.c\n")
    job = write_job(input={"path": "in.csv", "columns": {"email": "\x1b[2Jmail\n"}})
    capsys.readouterr()
    code = cli.main(["validate", str(job)])
    err = capsys.readouterr().err
    assert code in (65, 78), err
    assert not _raw_controls(err) and err.count("\n") == 1


def test_status_into_a_full_device_is_74_in_one_line(finished: Finished) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "erasure", "status", str(finished.job)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    assert result.returncode == 74, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["erasure: error: cannot write to standard output: No space left on device"]


@pytest.mark.parametrize("proxy", ["http://[::1", "http://proxy:99999", "http://:3128"])
def test_a_malformed_proxy_is_78_and_never_shown(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    proxy: str,
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(write_job, sandbox.url)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    capsys.readouterr()
    assert 78 == e2e.run(job)
    err = capsys.readouterr().err
    assert "proxy" in err and proxy not in err
    assert sandbox.deletes() == {}
