"""erasure sweep against the real sandbox: a restored backup, a re-import, a dry run."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from erasure.after.sweep import reappeared
from erasure.ledger import open_readonly
from tests import e2e
from tests.sandbox_fixture import Sandbox

SWEEP = {"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email", "phone": "phone"}}


def _erase(write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path) -> Path:
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    job = e2e.job(write_job, sandbox.url, sweep=SWEEP)
    assert 0 == e2e.run(job)
    return job


def _sweep(job: Path, export: Path, *args: str) -> int:
    return cli.main(["sweep", str(job), "--export", str(export), "--log-format", "json", *args])


def test_a_restored_backup_is_deleted_again_and_recorded(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = _erase(write_job, sandbox, tmp_path)
    restored = sandbox.restore(last=3)
    assert len(restored) == 3
    export = tmp_path / "export.csv"
    sandbox.export(export)
    capsys.readouterr()

    assert 1 == _sweep(job, export, "--dry-run")
    out = capsys.readouterr().out
    assert "reappeared: 3 (3 by profile id, 0 by identifier only)" in out
    assert not any(e["kind"] == "reappeared" for e in e2e.events(tmp_path / "ledger.sqlite"))
    assert all(sandbox.deletes()[pid] == 1 for pid in restored)

    assert 1 == _sweep(job, export)
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)  # deleted again, once each
    with closing(open_readonly(tmp_path / "ledger.sqlite")) as db:
        found = reappeared(db)
    assert sorted(found["profile_id"].to_list()) == sorted(restored)
    assert set(found["match"]) == {"profile_id"}
    assert set(found["decision"]) == {"deleted"}
    assert set(found["outcome"]) == {"erased"}
    assert found["first_erased_at"].null_count() == 0
    events = e2e.events(tmp_path / "ledger.sqlite")
    started = [json.loads(e["detail"]) for e in events if e["kind"] == "run_started"]
    assert started[-1]["command"] == "sweep"
    assert "command" not in started[0]  # run's own detail keeps its shape
    # no raw identifier in the ledger: only keys and profile ids
    assert not any("@example.com" in str(tuple(e)) for e in events)

    # the next export has nothing that came back
    sandbox.export(export)
    assert 0 == _sweep(job, export)
    assert 0 == cli.main(["verify", str(job)])


def test_a_reimported_person_waits_for_a_decision(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = _erase(write_job, sandbox, tmp_path)
    new_id = sandbox.reimport(email="  USER4@example.com ")
    export = tmp_path / "export.csv"
    sandbox.export(export)
    capsys.readouterr()

    assert 1 == _sweep(job, export)
    out = capsys.readouterr().out
    assert f"profile {new_id} reappeared (identifier match, request T4" in out
    assert "waiting for a decision: 1" in out
    assert new_id not in sandbox.deletes()
    # a second sweep lists it again, but records it once
    assert 1 == _sweep(job, export)
    assert "(listed before)" in capsys.readouterr().out
    with closing(open_readonly(tmp_path / "ledger.sqlite")) as db:
        assert reappeared(db)["decision"].to_list() == ["waiting"]

    assert 1 == _sweep(job, export, "--include-identifier-matches")
    assert sandbox.deletes()[new_id] == 1
    with closing(open_readonly(tmp_path / "ledger.sqlite")) as db:
        rows = reappeared(db)
    assert rows["decision"].to_list() == ["waiting", "deleted"]
    assert rows["outcome"].to_list()[-1] == "erased"


def test_sweep_without_a_sweep_section_reads_altcraft_names(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """[sweep] is optional: db_id is [input] db_id, the columns are Altcraft's own names."""
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    capsys.readouterr()
    assert 0 == _sweep(job, export)
    assert "profiles in export: 98" in capsys.readouterr().out


def test_sweep_without_any_db_id_is_78(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With db_id_column, only the sweep needs [sweep] db_id: 78 naming it, nothing read."""
    job = write_job(input={"db_id": None, "db_id_column": "db"})
    export = tmp_path / "export.csv"
    export.write_text("_id,email\n1,a@example.com\n")
    assert 78 == _sweep(job, export, "--dry-run")
    err = capsys.readouterr().err
    assert "sweep.db_id is required" in err and "Traceback" not in err


def test_an_unknown_key_in_sweep_is_78(write_job: Callable[..., Path], tmp_path: Path) -> None:
    job = write_job(sweep={"db_id": 1, "profile_column": "_id"})
    assert 78 == cli.main(["sweep", str(job), "--export", str(tmp_path / "x.csv"), "--dry-run"])
