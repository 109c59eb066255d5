"""A sweep resumes per export, is not repeated, and never rewrites the account (issue 21).

A second sweep of the same export used to re-send every delete and grow the
ledger; a sweep's not_found turned an erased pair into not_found; and the
pair count grew after a sweep, so that status no longer matched validate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from erasure import cli
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox
from tests.test_sweep import SWEEP, _erase, _sweep


def _status(job: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job), "--json"])
    info: dict[str, Any] = json.loads(capsys.readouterr().out)
    return info


def test_a_finished_sweep_is_not_repeated_and_the_pairs_stay_as_they_were(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = _erase(write_job, sandbox, tmp_path)
    before = _status(job, capsys)
    restored = sandbox.restore(last=3)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    assert 1 == _sweep(job, export)
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)
    after = _status(job, capsys)
    # the input's pairs are as they were; the sweep's deletes are on their own line
    assert (after["total"], after["erased"]) == (before["total"], before["erased"]) == (10, 10)
    assert after["sweep_deletes"] == {"deletes": 3, "erased": 3, "not_found": 0, "open": 0}

    capsys.readouterr()
    assert 1 == _sweep(job, export)  # the same export again: nothing sent
    assert "swept whole by run" in capsys.readouterr().out
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)

    # --again (a second restore gave the same export): sent again; the profiles are gone
    # now, so the service answers not_found, which never turns the erased into not_found
    assert 1 == _sweep(job, export, "--again")
    assert all(sandbox.deletes()[pid] == 3 for pid in restored)
    again = _status(job, capsys)
    assert again["sweep_deletes"] == {"deletes": 3, "erased": 3, "not_found": 0, "open": 0}
    assert (again["total"], again["erased"], again["not_found"]) == (10, 10, 0)
    out = tmp_path / "r.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(out)])
    assert "not_found" not in out.read_text(encoding="utf-8")
    page = tmp_path / "r.html"
    assert 0 == cli.main(["report", str(job), "--out", str(page)])
    assert 'data-count="sweep_deletes"' in page.read_text(encoding="utf-8")


def test_an_unfinished_sweep_resumes_with_only_what_is_left(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(generate_count=10)
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    job = e2e.job(write_job, sandbox.url, sweep=SWEEP, run={"preflight": False})
    assert 0 == e2e.run(job)
    restored = sandbox.restore(last=4)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    from erasure import job as job_mod
    from erasure.after.sweep import sweep

    # the first sweep is stopped before it sends anything (its time is up at once)
    stopped = sweep(
        job_mod.load(job),
        export,
        options=Options(deadline=0.0, install_signal_handlers=False),
    )
    assert stopped.exit_code == 75
    first = sum(sandbox.deletes()[pid] for pid in restored)
    assert 1 == _sweep(job, export)  # resumes: sends what has no final outcome yet
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)
    assert first == 4
    assert 1 == _sweep(job, export)  # finished now: not repeated
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)
    kinds = [e["kind"] for e in e2e.events(tmp_path / "ledger.sqlite")]
    assert kinds.count("reappeared") == 4  # each match recorded once
