"""status, lookup and verify through the CLI, on a ledger a real run wrote."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox


@pytest.fixture(name="done_job")
def _done_job(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> Path:
    """A job whose run erased user0..user4 and found nobody@ not found."""
    sandbox = sandbox_factory(generate_count=10)
    e2e.emails_csv(tmp_path / "in.csv", range(5), extra=["T9,nobody@example.com"])
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    return job


def test_status_json_counts(done_job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status --json prints one object with total, pending, in_doubt and each outcome."""
    capsys.readouterr()
    assert 0 == cli.main(["status", str(done_job), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert (6, 5, 1, 0, 0, 0, 0) == (
        info["total"],
        info["erased"],
        info["not_found"],
        info["rejected"],
        info["failed"],
        info["pending"],
        info["in_doubt"],
    )
    assert 0 == info["last_run"]["exit_code"]


def test_status_needs_no_secret(
    done_job: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """status reads the ledger without the token or the ledger key."""
    monkeypatch.delenv("ALTCRAFT_TOKEN")
    monkeypatch.delenv("ERASURE_LEDGER_KEY")
    assert 0 == cli.main(["status", str(done_job)])
    assert "(request, identifier) pairs 6 = erased 5 + not found 1 + " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "code", "says"),
    [
        ("user3@example.com", 0, "erased"),
        ("  USER3@Example.COM ", 0, "erased"),
        ("nobody@example.com", 0, "not_found"),
        ("stranger@example.com", 1, "not in the ledger"),
    ],
)
def test_lookup_answers_by_key(
    done_job: Path, capsys: pytest.CaptureFixture[str], value: str, code: int, says: str
) -> None:
    """lookup normalises like the intake and answers from the key alone."""
    capsys.readouterr()
    assert code == cli.main(["lookup", str(done_job), "--email", value])
    out = capsys.readouterr().out
    assert says in out
    assert value.strip().lower() not in out


def test_lookup_reads_dash_from_stdin(
    done_job: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--email -` reads the value from standard input, out of the shell's history."""
    monkeypatch.setattr("sys.stdin", io.StringIO("user1@example.com\n"))
    assert 0 == cli.main(["lookup", str(done_job), "--email", "-"])
    assert "request T1: erased" in capsys.readouterr().out


def test_lookup_of_an_unusable_value_is_a_usage_error(
    done_job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value that cannot be an email is one line and exit 64."""
    assert 64 == cli.main(["lookup", str(done_job), "--email", "not-an-email"])
    assert "not usable" in capsys.readouterr().err


def test_verify_intact_then_broken(done_job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify exits 0 on the run's ledger and 1, naming the event, once one is changed."""
    capsys.readouterr()
    assert 0 == cli.main(["verify", str(done_job)])
    out = capsys.readouterr().out
    assert "ledger intact" in out and "chain head: event" in out
    ledger = done_job.parent / "ledger.sqlite"
    with closing(sqlite3.connect(ledger)) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET outcome = 'erased' WHERE outcome = 'not_found'")
        db.commit()
    assert 1 == cli.main(["verify", str(done_job)])
    assert "BROKEN: event" in capsys.readouterr().out


def test_commands_on_a_missing_ledger_say_so(
    write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """status before any run: one line, exit 66."""
    assert 66 == cli.main(["status", str(write_job())])
    assert "does not exist" in capsys.readouterr().err


def test_a_ledger_a_first_run_is_still_creating_is_no_ledger_yet(
    write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The empty file a first run makes before its schema commits: 66, not "not a ledger" (78).

    A reader sees exactly this while the first run creates the ledger (or
    after one stopped before its first commit); any other unreadable file
    is still 78.
    """
    job = write_job()
    ledger = job.parent / "ledger.sqlite"
    ledger.touch(mode=0o600)
    for command in (["status", str(job)], ["lookup", str(job), "--email", "a@example.com"]):
        assert 66 == cli.main(command)
        err = capsys.readouterr().err
        assert "holds nothing yet" in err and "not an erasure ledger" not in err
    ledger.write_bytes(b"this is no database" * 300)
    assert 78 == cli.main(["status", str(job)])
    assert "not an erasure ledger" in capsys.readouterr().err
