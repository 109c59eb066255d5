"""One word for each thing: a request is a ticket, a delete a call; numbers agree with nouns;
an unknown request id is 64 in the same words in every command."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import cli
from erasure.wording import count
from tests import e2e
from tests.conftest import LEDGER_KEY
from tests.sandbox_fixture import Sandbox


def test_count_agrees_with_its_number() -> None:
    assert ["0 requests", "1 request", "2 requests", "1 delete", "3 deletes"] == [
        count(0, "request"),
        count(1, "request"),
        count(2, "request"),
        count(1, "delete"),
        count(3, "delete"),
    ]


@pytest.fixture(name="done")
def _done(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.token)
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)
    (tmp_path / "in.csv").write_text(
        "ticket,email,received_at\nT1,user1@example.com,2026-12-01\nT2,bad,2026-12-01\n"
    )
    job = e2e.job(write_job, sandbox.url, input={"received_at_column": "received_at"})
    assert 1 == cli.main(["run", str(job), "--no-progress", "--log-format", "console"])
    out = capsys.readouterr().out
    assert re.search(r"; \d+ deletes? in [\d.]+ s", out) and "requests in" not in out
    return job


def test_an_unknown_request_id_is_64_in_the_same_words_everywhere(
    done: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = str(done)
    commands = [
        ["status", job, "--request-id", "NOPE"],
        ["status", job, "--request-id", "NOPE", "--json"],
        ["report", job, "--out", str(tmp_path / "r.csv"), "--request-id", "NOPE"],
        ["receipt", job, "--request-id", "NOPE", "--out", str(tmp_path / "r.json")],
        ["hold", job, "--request-id", "NOPE", "--reason", "x"],
        ["cancel", job, "--request-id", "NOPE", "--reason", "x"],
        [
            "extend", job, "--request-id", "NOPE", "--by", "1 month",
            "--informed-at", "2026-12-02", "--reason", "x",
        ],
    ]  # fmt: skip
    for args in commands:
        capsys.readouterr()
        code = cli.main(args)
        err = capsys.readouterr().err
        if args[0] == "receipt" and code == 78:  # no [receipts] in this job: its key first
            continue
        assert (64, True) == (code, "the ledger has never seen request 'NOPE'" in err), args
    assert not (tmp_path / "r.csv").exists()


def test_status_of_one_request_says_its_verdict_reasons_and_deadline(
    done: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert 0 == cli.main(["status", str(done), "--request-id", "T2"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("request T2: incomplete (reason: ")
    assert out[1].startswith("deadline: 2026-12-31T23:59:59")
    assert 0 == cli.main(["status", str(done), "--request-id", "T1"])
    assert capsys.readouterr().out.startswith("request T1: complete\n")


def test_the_sweeps_dry_run_never_says_deleted(
    done: Path, sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.csv"
    sandbox.export(export)
    capsys.readouterr()
    cli.main(["sweep", str(done), "--export", str(export), "--dry-run"])
    out = capsys.readouterr().out
    assert "to delete again: 0 (dry run: nothing sent)" in out
    assert "deleted" not in out
