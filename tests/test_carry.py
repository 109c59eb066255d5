"""Nothing falls out (issue 21): open pairs of an earlier input join every later run.

A run stopped by its time budget leaves pairs of ``a.csv`` open. The next
night's run of ``b.csv`` re-reads ``a.csv`` when it is still where it was,
unchanged, and finishes them; when it is gone or changed, the run names it
on stderr (name, SHA-256 prefix, count, how to settle), ``status`` shows it
(``open_elsewhere``), and the run exits 1, never 0.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from erasure import cli
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _status(job: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job), "--json"])
    info: dict[str, Any] = json.loads(capsys.readouterr().out)
    return info


def _stopped_night(
    sandbox: Sandbox, job: Path, a: Path, capsys: pytest.CaptureFixture[str], **options: Any
) -> None:
    """A run of ``a`` whose every delete hangs: the time budget stops it with all left open."""
    sandbox.configure(hang=1.0)
    if options:
        deadline = time.monotonic() + 1.0
        opts = Options(deadline=deadline, install_signal_handlers=False, **options)
        assert 75 == e2e.run_with(job, opts)
    else:
        assert 75 == e2e.run(job, "--input", str(a), "--max-duration", "1s")
    err = capsys.readouterr().err
    assert "a.csv" in err and "keep" in err  # a stopped run says which file to keep
    sandbox.configure(hang=0.0)


@pytest.fixture(name="setup")
def _setup(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> tuple[Sandbox, Path, Path, Path]:
    sandbox = sandbox_factory(generate_count=60)
    a = e2e.emails_csv(tmp_path / "a.csv", range(40))
    b = e2e.emails_csv(tmp_path / "b.csv", [*range(10), *range(40, 50)])  # names 10 of a's
    job = e2e.job(
        write_job, sandbox.url, input={"path": "a.csv"}, run={"concurrency": 4, "preflight": False}
    )
    return sandbox, job, a, b


def test_a_gone_file_s_open_pairs_are_named_and_exit_1_until_it_comes_back(
    setup: tuple[Sandbox, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, job, a, b = setup
    _stopped_night(sandbox, job, a, capsys)
    blob = a.read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    a.unlink()  # the operator deleted the file of raw identifiers
    assert 1 == e2e.run(job, "--input", str(b))  # never 0 while a's pairs are open
    err = capsys.readouterr().err
    assert "a.csv" in err and sha[:12] in err and "30" in err  # 40 less the 10 b settled
    assert "cancel" in err
    info = _status(job, capsys)
    assert info["open_elsewhere"] == [
        {"file": "a.csv", "path": str(a), "sha256": sha, "open": 30, "state": "gone"}
    ]
    assert info["pending"] == 30
    assert "still open and their files gone: a.csv" in info["verdict"]
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job)])
    assert "a.csv" in capsys.readouterr().out
    page = tmp_path / "r.html"
    assert 0 == cli.main(["report", str(job), "--out", str(page)])
    head = page.read_text(encoding="utf-8").split('id="summary"')[0]
    assert 'data-open-elsewhere="a.csv"' in head and sha[:12] in head

    a.write_bytes(blob)  # the same file again: re-read, carried over, finished
    assert 0 == e2e.run(job, "--input", str(b))
    err = capsys.readouterr().err
    checked = [json.loads(x) for x in err.splitlines() if "final_checked" in x]
    assert [(c["keys"], c["events"]) for c in checked] == [(20, 20)]  # b's, all final
    carried = [json.loads(x) for x in err.splitlines() if "carried_over" in x]
    assert [(c["file"], c["open"]) for c in carried] == [("a.csv", 30)]
    info = _status(job, capsys)
    assert info["open_elsewhere"] == [] and info["pending"] == 0
    assert info["erased"] == 50
    assert "a.csv" in [f["file"] for f in info["safe_to_delete"]]


def test_a_changed_file_is_not_re_read(
    setup: tuple[Sandbox, Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox, job, a, b = setup
    _stopped_night(sandbox, job, a, capsys)
    e2e.emails_csv(a, range(5))  # another file under the same name
    assert 1 == e2e.run(job, "--input", str(b))
    info = _status(job, capsys)
    [gone] = info["open_elsewhere"]
    assert (gone["file"], gone["open"], gone["state"]) == ("a.csv", 30, "changed")


def test_a_stop_that_never_planned_part_of_its_file_keeps_the_file_open(
    setup: tuple[Sandbox, Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing of a's unreached plan is recorded: the file still counts 40 open."""
    sandbox, job, a, b = setup
    _stopped_night(sandbox, job, a, capsys, record_on_stop_max=0)
    a.unlink()
    b.write_text("ticket,email\nT55,user55@example.com\n", encoding="utf-8")
    assert 1 == e2e.run(job, "--input", str(b))
    info = _status(job, capsys)
    [gone] = info["open_elsewhere"]
    assert (gone["file"], gone["open"]) == ("a.csv", 40)


def test_an_earlier_file_this_job_can_no_longer_read_is_named(
    setup: tuple[Sandbox, Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same bytes, but the job now maps another column: its open pairs are named."""
    sandbox, job, a, b = setup
    _stopped_night(sandbox, job, a, capsys)
    b.write_text("ticket,mail\nT55,user55@example.com\n", encoding="utf-8")
    text = job.read_text(encoding="utf-8")
    job.write_text(text.replace("[input]\n", '[input]\ncolumns = { email = "mail" }\n', 1))
    assert 1 == e2e.run(job, "--input", str(b))
    info = _status(job, capsys)
    [named] = info["open_elsewhere"]
    assert (named["file"], named["open"]) == ("a.csv", 40)
