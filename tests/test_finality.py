"""A pair is final only when the event its derived state cites says so (issue 21).

One INSERT into ``pair_state`` with the sqlite3 shell used to make ``run``
skip that person with exit 0 and ``lookup`` answer "erased". Now both stop
with 78 and point to ``erasure verify``; an honest ledger (archived too)
passes the same check.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure import ledger as L
from erasure.errors import StateDisagrees
from erasure.keys import Role
from erasure.ledger import finality
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _forge(ledger: Path, request_id: str, key: str, cite: str = "outcome") -> None:
    """What issue 21 did by hand: a pair_state row saying 'erased', citing a real event."""
    with closing(sqlite3.connect(ledger)) as db:
        (last,) = db.execute("SELECT max(seq) FROM events").fetchone()
        (seq,) = db.execute(f"SELECT max(seq) FROM events WHERE kind = '{cite}'").fetchone()
        db.execute(
            "INSERT INTO pair_state (request_id, key, db_id, matching, first_planned, "
            "last_planned_run, outcome, outcome_seq, final_outcome, final_seq, last_seq) "
            "VALUES (?, ?, 1, 'email', 2, 1, 'erased', ?, 'erased', ?, ?)",
            (request_id, key, seq, seq, last),
        )
        db.commit()


@pytest.fixture(name="done")
def _done(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> tuple[Sandbox, Path, job_mod.Job]:
    sandbox = sandbox_factory(generate_count=10)
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    path = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(path)
    return sandbox, path, job_mod.load(path)


def test_an_inserted_pair_state_row_stops_run_and_lookup_with_78(
    done: tuple[Sandbox, Path, job_mod.Job], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, path, job = done
    keyer = job.keyer(Role.CHAIN)
    key = keyer.key(1, "email", None, None, "user9@example.com")
    _forge(job.ledger.path, "T9", key)
    capsys.readouterr()
    assert 78 == cli.main(["lookup", str(path), "--email", "user9@example.com"])
    assert "erasure verify" in capsys.readouterr().err
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    assert 78 == e2e.run(path)
    assert "erasure verify" in capsys.readouterr().err
    assert 5 == sandbox.stats(per_profile=False)["erased_profiles"]  # nothing was sent


def test_an_honest_ledger_passes_and_lookup_answers(
    done: tuple[Sandbox, Path, job_mod.Job], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, job = done
    assert 0 == cli.main(["lookup", str(path), "--email", "user1@example.com"])
    keyer = job.keyer(Role.CHAIN)
    keys = [keyer.key(1, "email", None, None, f"user{i}@example.com") for i in range(5)]
    with closing(L.open_readonly(job.ledger.path)) as db:
        assert 10 == finality.check_keys(db, keys, keyer)  # outcome and final outcome each
        assert 10 == finality.check_keys(db, keys)  # without the key: the plain chain


def test_a_citation_of_another_kind_of_event_is_refused(
    done: tuple[Sandbox, Path, job_mod.Job],
) -> None:
    _, _, job = done
    keyer = job.keyer(Role.CHAIN)
    key = keyer.key(1, "email", None, None, "user1@example.com")
    _forge(job.ledger.path, "T1b", key, cite="planned")
    with closing(L.open_readonly(job.ledger.path)) as db, pytest.raises(StateDisagrees):
        finality.check_keys(db, [key], keyer)


def test_a_ledger_not_yet_migrated_is_refused_then_checked_once_migrated(
    done: tuple[Sandbox, Path, job_mod.Job], capsys: pytest.CaptureFixture[str]
) -> None:
    """No derived state to cite anything: lookup refuses (78) rather than answer from the
    events; once migrated, the state it reads cites outcomes that are checked."""
    from tests.test_ledger_state import _strip_state

    _, path, job = done
    _strip_state(job.ledger.path)
    capsys.readouterr()
    assert 78 == cli.main(["lookup", str(path), "--email", "user1@example.com"])
    assert "erasure migrate" in capsys.readouterr().err
    assert 0 == cli.main(["migrate", str(path)])
    assert 0 == cli.main(["lookup", str(path), "--email", "user1@example.com"])
    keyer = job.keyer(Role.CHAIN)
    keys = [keyer.key(1, "email", None, None, f"user{i}@example.com") for i in range(5)]
    with closing(L.open_readonly(job.ledger.path)) as db:
        assert 10 == finality.check_keys(db, keys, keyer)
