"""Files the tool writes are created owner-only (or 0640 for [ledger] group), never re-moded.

Real files throughout: a real SQLite ledger with its -wal, -shm and lock
files, a real report, a real rejects file, under the usual umask 022.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest

from erasure import files, report
from erasure import job as job_mod
from erasure import ledger as L
from erasure.errors import ConfigError, SecretMissing
from erasure.intake import INVALID_SCHEMA
from erasure.keys import Keyer, new_ledger_key
from erasure.report.rejects import write_rejects
from tests.conftest import LEDGER_KEY
from tests.ledger_details import STARTED

KEYER = Keyer(LEDGER_KEY.encode())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(name="umask")
def _umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; restored afterwards."""
    old = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(old)


def a_group() -> str:
    """A real group this process may give files to, other than its own where it can."""
    if os.geteuid() == 0:
        return grp.getgrgid(1).gr_name  # root may give a file to any group
    return grp.getgrgid(os.getegid()).gr_name


def rejects_frame() -> pl.DataFrame:
    row = {name: None for name in INVALID_SCHEMA.names()}
    return pl.DataFrame([row], schema=INVALID_SCHEMA)


Modes = dict[str, tuple[int, int]]  # file -> (mode, gid)


def write_everything(job: job_mod.Job, tmp_path: Path) -> tuple[Modes, Modes]:
    """The modes of the ledger's files while a run holds it, then of the outputs.

    The ledger is written and left open, so that its -wal and -shm exist;
    then a report in every format and a rejects file are written.
    """
    with L.Ledger(job.ledger.path, KEYER, perms=job.perms) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail=STARTED)])
        paths = {f"ledger{s}": Path(f"{job.ledger.path}{s}") for s in ("", "-wal", "-shm", ".lock")}
        ledger_files = {name: (mode(p), p.stat().st_gid) for name, p in paths.items()}
    outputs = {
        f"report{s}": tmp_path / f"report{s}" for s in (".csv", ".xlsx", ".parquet", ".html")
    }
    with closing(L.open_readonly(job.ledger.path)) as db:
        for path in outputs.values():
            report.write(db, job, path)
    outputs["rejects"] = tmp_path / "rejects.csv"
    write_rejects(rejects_frame(), outputs["rejects"], job.perms)
    return ledger_files, {name: (mode(p), p.stat().st_gid) for name, p in outputs.items()}


def test_every_file_is_owner_only_under_umask_022(
    write_job: Callable[..., Path], tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    job = job_mod.load(write_job())
    ledger_files, outputs = write_everything(job, tmp_path)
    assert 9 == len(ledger_files | outputs)
    for found in (ledger_files, outputs):
        assert {name: 0o600 for name in found} == {name: m for name, (m, _) in found.items()}
    assert [] == list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_a_group_gets_0640_and_the_group_itself(
    write_job: Callable[..., Path], tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    group = a_group()
    job = job_mod.load(write_job(ledger={"group": group}))
    gid = grp.getgrnam(group).gr_gid
    assert files.Perms(0o640, gid, group) == job.perms
    ledger_files, outputs = write_everything(job, tmp_path)
    assert {name: (0o640, gid) for name in outputs} == outputs
    # SQLite gives -wal and -shm the ledger file's mode (and, as root, its group)
    if os.geteuid() == 0:
        assert {name: (0o640, gid) for name in ledger_files} == ledger_files
    else:
        assert {name: 0o640 for name in ledger_files} == {
            name: m for name, (m, _) in ledger_files.items()
        }


def test_a_umask_takes_bits_away_but_never_adds_them(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o077)
    group = files.Perms.for_group(a_group())
    with files.open_new(tmp_path / "g", group) as f:
        f.write(b"x")
    assert 0o600 == mode(tmp_path / "g")
    umask(0)
    with files.open_new(tmp_path / "o") as f:
        f.write(b"x")
    assert 0o600 == mode(tmp_path / "o")


def test_an_older_ledger_keeps_its_mode(tmp_path: Path, umask: Callable[[int], None]) -> None:
    """Existing files are never re-moded: their owner decides."""
    path = tmp_path / "ledger.sqlite"
    path.touch(0o644)
    assert not files.precreate(path)
    with L.Ledger(path, KEYER) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail=STARTED)])
    assert 0o644 == mode(path)


def test_open_new_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        files.open_new(tmp_path / "f")
    assert b"keep" == (tmp_path / "f").read_bytes()


def test_atomic_write_replaces_a_world_readable_file(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    out = tmp_path / "report.csv"
    out.write_text("old")
    out.chmod(0o644)
    with files.atomic_write(out) as tmp:
        assert 0o600 == mode(tmp) and tmp.parent == tmp_path
        tmp.write_text("new")
    assert ("new", 0o600) == (out.read_text(), mode(out))


def test_atomic_write_that_fails_leaves_the_old_file_and_no_debris(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_write(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert "old" == out.read_text()
    assert ["report.csv"] == [p.name for p in tmp_path.iterdir()]


SECRET = "s3cret-value-0123456789"


@pytest.mark.parametrize(
    ("file_mode", "group", "refused"),
    [
        (0o600, False, False),
        (0o400, False, False),
        (0o640, False, True),
        (0o604, False, True),
        (0o644, False, True),
        (0o660, False, True),
        (0o640, True, False),
        (0o604, True, True),
        (0o644, True, True),
    ],
)
def test_a_secret_others_may_read_is_refused_as_ssh_does(
    tmp_path: Path, file_mode: int, group: bool, refused: bool
) -> None:
    path = tmp_path / "ledger-key"
    path.write_text(SECRET + "\n")
    path.chmod(file_mode)
    perms = files.Perms.for_group(a_group()) if group else files.OWNER_ONLY
    if not refused:
        assert SECRET == files.read_secret(path, "ledger key file", perms)
        return
    with pytest.raises(SecretMissing) as info:
        files.read_secret(path, "ledger key file", perms)
    message = str(info.value)
    assert 78 == info.value.exit_code
    assert f"ledger key file {path} may be read by others (mode {file_mode:04o})" in message
    assert f"`chmod 600 {path}`" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_an_unusable_secret_file_is_named(tmp_path: Path, content: bytes | None, says: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
        path.chmod(0o600)
    with pytest.raises(SecretMissing, match=f"api token file {path} {says}"):
        files.read_secret(path, "api token file")


def test_an_unknown_group_is_78_naming_it(write_job: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as info:
        job_mod.load(write_job(ledger={"group": "no-such-group-erasure"}))
    assert 78 == info.value.exit_code
    assert "ledger.group 'no-such-group-erasure' is not a group on this system" in str(info.value)


def test_a_group_this_user_is_not_in_is_78(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a member (or root) may give a file to a group: said when the job is read."""
    other = next(g for g in grp.getgrall() if g.gr_gid not in (0, os.getegid()))
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    monkeypatch.setattr(os, "getegid", lambda: 4242)
    monkeypatch.setattr(os, "getgroups", lambda: [4242])
    with pytest.raises(ConfigError, match=f"{other.gr_name!r}: this user is not a member"):
        files.Perms.for_group(other.gr_name)


def test_a_new_key_file_is_owner_only_and_never_overwritten(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    key = new_ledger_key()
    path = tmp_path / "ledger.key"
    files.write_secret(path, key)
    assert (0o600, key) == (mode(path), files.read_secret(path, "ledger key file"))
    with pytest.raises(FileExistsError):
        files.write_secret(path, new_ledger_key())
    assert key == files.read_secret(path, "ledger key file")
