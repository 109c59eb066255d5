"""Ledger path safety (finding: a symlink to another application's SQLite file got erasure's
tables written into it; a dangling symlink created the ledger 0644; a ledger pre-created by
another user in a shared folder was adopted; under umask 000 the ledger's folders were 0777;
a symlinked lock exited 70).

The contract: the ledger path may not be a symlink; an existing SQLite file without the
erasure schema is never written into; the ledger, its companions and its folder must be
owned by the user and not writable by others; folders the tool creates are 0700 (0750 with
[ledger] group). Else 78, naming the file and the fix.
"""

from __future__ import annotations

import grp
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests import e2e

ROOT = os.geteuid() == 0
CI = os.environ.get("ERASURE_CI") == "1"


def _run(job: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = e2e.run(job)
    return code, capsys.readouterr().err


def _foreign_sqlite(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE contacts (name TEXT, email TEXT)")
        db.execute("INSERT INTO contacts VALUES ('someone', 'someone@example.com')")
        db.commit()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _job(write_job: Callable[..., Path], tmp_path: Path, ledger: str = "ledger.sqlite") -> Path:
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    return write_job(ledger={"path": ledger})  # type: ignore[no-any-return]


def test_a_symlink_to_another_applications_sqlite_file_is_refused(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "crm.db"
    before = _foreign_sqlite(other)
    (tmp_path / "ledger.sqlite").symlink_to(other)
    code, err = _run(_job(write_job, tmp_path), capsys)
    assert code == 78
    assert "symbolic link" in err and "ledger.sqlite" in err
    assert _tables(other) == {"contacts"}
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before


def test_an_sqlite_file_that_is_not_a_ledger_is_never_written_into(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "ledger.sqlite"
    before = _foreign_sqlite(other)
    code, err = _run(_job(write_job, tmp_path), capsys)
    assert code == 78
    assert "SQLite file of something else" in err and str(other) in err
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before


def test_a_dangling_symlink_is_refused_and_nothing_is_created(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere.sqlite"
    (tmp_path / "ledger.sqlite").symlink_to(target)
    code, err = _run(_job(write_job, tmp_path), capsys)
    assert code == 78 and "symbolic link" in err
    assert not target.exists()


def test_a_symlinked_lock_is_78_not_70(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "victim.txt"
    elsewhere.write_text("keep me\n")
    (tmp_path / "ledger.sqlite.lock").symlink_to(elsewhere)
    code, err = _run(_job(write_job, tmp_path), capsys)
    assert code == 78 and "ledger.sqlite.lock" in err and "symbolic link" in err
    assert elsewhere.read_text() == "keep me\n"


def test_a_ledger_others_may_write_is_refused(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    ledger.touch(mode=0o600)
    ledger.chmod(0o666)
    code, err = _run(_job(write_job, tmp_path), capsys)
    assert code == 78 and "chmod go-w" in err


@pytest.mark.skipif(not ROOT and not CI, reason="giving a file to another user needs root")
def test_a_ledger_pre_created_by_another_user_is_never_adopted(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # a shared folder, as /tmp
    planted = shared / "ledger.sqlite"
    planted.touch(mode=0o600)
    os.chown(planted, 65534, 65534)  # nobody
    code, err = _run(_job(write_job, tmp_path, "shared/ledger.sqlite"), capsys)
    assert code == 78 and "belongs to another user" in err
    assert planted.stat().st_size == 0


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_folders_made_for_a_ledger_are_0700_whatever_the_umask(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(write_job, tmp_path, "deep/er/ledger.sqlite")
    with _umask(0):
        _run(job, capsys)  # nothing listens at the job's URL: only the folders matter here
    for folder in (tmp_path / "deep", tmp_path / "deep" / "er"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_folders_made_for_a_group_ledger_are_0750_and_the_groups(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = write_job(ledger={"path": "g/ledger.sqlite", "group": group})
    with _umask(0o077):
        _run(job, capsys)
    folder = tmp_path / "g"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert folder.stat().st_gid == os.getegid()
