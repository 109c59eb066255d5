"""Archiving again, and what a killed archive leaves (findings: re-archiving an archived ledger
wrote a wrong note, "events 35 to 35 of runs 0-9", moving only the archive record; a killed
archive left scratch files beside the ledger).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from erasure import cli
from tests import e2e
from tests.hostile.conftest import Finished


def test_archiving_again_with_no_new_run_is_refused_and_changes_nothing(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    job = str(finished.job)
    first = finished.folder / "a1.sqlite"
    assert 0 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(first)])
    with closing(sqlite3.connect(finished.ledger)) as db:
        before = db.execute("SELECT count(*), max(seq) FROM events").fetchone()
    capsys.readouterr()
    second = finished.folder / "a2.sqlite"
    assert 64 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(second)])
    assert "nothing to archive" in capsys.readouterr().err
    assert not second.exists()
    with closing(sqlite3.connect(finished.ledger)) as db:
        assert db.execute("SELECT count(*), max(seq) FROM events").fetchone() == before


def test_a_second_archive_names_only_the_runs_it_moves(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    job = str(finished.job)
    assert 0 == cli.main(
        ["archive", job, "--before", "2999-01-01", "--out", str(finished.folder / "a1.sqlite")]
    )
    e2e.emails_csv(finished.input, range(5, 8))
    assert 0 == e2e.run(finished.job)
    capsys.readouterr()
    assert 0 == cli.main(
        ["archive", job, "--before", "2999-01-01", "--out", str(finished.folder / "a2.sqlite")]
    )
    out = capsys.readouterr().out
    assert "of runs 2-2 into" in out, out


def test_an_archive_clears_what_a_killed_one_left(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    out = finished.folder / "a1.sqlite"
    left = [
        finished.folder / ".ledger.sqlite.archiving",
        finished.folder / ".ledger.sqlite.archiving-wal",
        finished.folder / ".a1.sqlite.writing",
        finished.folder / ".ledger.sqlite.replay-k1ll3d.sqlite",
    ]
    for path in left:  # as a SIGKILL in the middle of an archive leaves them
        path.write_bytes(b"half made")
    assert 0 == cli.main(
        ["archive", str(finished.job), "--before", "2999-01-01", "--out", str(out)]
    )
    assert [p.name for p in left if p.exists()] == []
    assert [p.name for p in finished.folder.iterdir() if p.name.startswith(".")] == []
