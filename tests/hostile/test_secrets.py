"""Secrets with `[ledger] group`, and files others may write (findings: a job file others may
write was accepted, so whoever edits `base_url` or `ca_bundle` receives the token; the
contract: only the ledger key may be the group's, the token stays 0600).
"""

from __future__ import annotations

import grp
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e

GROUP = grp.getgrgid(os.getegid()).gr_name  # a group this user may give files to


def _job(write_job: Callable[..., Path], tmp_path: Path, **ledger: object) -> Path:
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    token = tmp_path / "token"
    token.write_text("sandbox-token\n")
    token.chmod(0o600)
    key = tmp_path / "ledger.key"
    key.write_text("k" * 64 + "\n")
    key.chmod(0o600)
    return write_job(  # type: ignore[no-any-return]
        api={"base_url": "http://127.0.0.1:9", "token_file": "token"},
        ledger={"key_file": "ledger.key", **ledger},
    )


def _code(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def test_with_a_group_the_token_must_still_be_owner_only(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(write_job, tmp_path, group=GROUP)
    (tmp_path / "token").chmod(0o640)
    code, err = _code(capsys, "run", str(job), "--no-progress", "--log-format", "console")
    assert code == 78 and "token" in err and "chmod 600" in err


def test_with_a_group_the_ledger_key_may_be_0640_but_not_group_writable(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(write_job, tmp_path, group=GROUP)
    (tmp_path / "ledger.key").chmod(0o640)
    code, err = _code(capsys, "validate", str(job))
    assert code in (0, 1), err
    (tmp_path / "ledger.key").chmod(0o660)
    code, err = _code(capsys, "validate", str(job))
    assert code == 78 and "ledger.key" in err and "written by the group" in err


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_job_file_others_may_write_is_refused(
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mode: int,
) -> None:
    job = _job(write_job, tmp_path)
    job.chmod(mode)
    code, err = _code(capsys, "validate", str(job))
    assert code == 78, err
    assert "job file" in err and "chmod go-w" in err and err.count("\n") == 1


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_token_file_others_may_write_is_refused(
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mode: int,
) -> None:
    job = _job(write_job, tmp_path)
    (tmp_path / "token").chmod(mode)
    code, err = _code(capsys, "run", str(job), "--no-progress", "--log-format", "console")
    assert code == 78 and "token" in err
