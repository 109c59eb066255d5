"""Legal holds and cancellations end to end: the real CLI, the sandbox on loopback, real ledgers."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erasure import cli, decide
from erasure import job as job_mod
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _deleted(sandbox: Sandbox) -> set[str]:
    return set(sandbox.stats()["deletes_per_profile"])


def _cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
    import contextlib
    import sys

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


def _two_tickets(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone\nT1,user1@example.com,+79000000001\nT2,user2@example.com,+79000000002\n"
    )


def _job(write_job: Callable[..., Path], sandbox: Sandbox) -> Path:
    return e2e.job(write_job, sandbox.url, input={"columns": {"email": "email", "phone": "phone"}})


def _erased(outcomes: dict[tuple[str, str], str], rid: str) -> None:
    """The request's email and phone name one profile: one erased it, the other found none."""
    mine = {outcomes[(rid, "email")], outcomes[(rid, "phone")]}
    assert mine == {"erased", "not_found"}, mine


def _outcomes(tmp_path: Path) -> dict[tuple[str, str], str]:
    return {
        (r["request_id"], r["matching"]): r["outcome"]
        for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")
    }


def test_a_hold_on_an_email_holds_its_requests_phone_and_release_lets_the_next_run_send(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    code, out, err = _cli(
        "hold", str(job), "--email", "-", "--reason", "litigation L-7", stdin="user1@example.com\n"
    )
    assert 0 == code, err
    assert "recorded in the ledger" in out
    assert 0 == e2e.run(job)  # a person's decision makes no exit code
    before = sandbox.stats()["requests"]
    assert 1 == len(_deleted(sandbox))  # user2's profile only (its phone then finds nothing)
    outcomes = _outcomes(tmp_path)
    assert outcomes[("T1", "email")] == outcomes[("T1", "phone")] == "held"  # its phone too
    _erased(outcomes, "T2")
    # every command counts it the same way: status, its JSON, lookup
    code, out, err = _cli("status", str(job), "--json")
    assert 0 == code, err
    info = json.loads(out)
    assert 2 == info["held"] and 1 == info["incomplete_reasons"]["held"]
    code, out, _ = _cli("lookup", str(job), "--phone", "+79000000001")
    assert 1 == code and "held" in out and "litigation L-7" in out
    # the holds list shows it with who and since, by key: never the address
    code, out, _ = _cli("holds", str(job), "--json")
    listed = json.loads(out)
    assert 1 == len(listed["holds"]) and "litigation L-7" == listed["holds"][0]["reason"]
    assert "@" in listed["holds"][0]["who"] and "user1" not in out
    # a second run still sends nothing of T1
    assert 0 == e2e.run(job)
    assert before == sandbox.stats()["requests"]
    code, out, err = _cli(
        "release", str(job), "--email", "user1@example.com", "--reason", "claim settled"
    )
    assert 0 == code, err
    assert 0 == e2e.run(job)
    outcomes = _outcomes(tmp_path)
    _erased(outcomes, "T1")


def test_a_hold_whose_end_date_passed_no_longer_holds(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job_path = _job(write_job, sandbox)
    job = job_mod.load(job_path)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    yesterday = (two_days_ago + timedelta(days=1)).date().isoformat()
    decide.hold(
        job,
        decide.Selector(matching="email", raw="user1@example.com"),
        "until yesterday",
        yesterday,
        now=two_days_ago,
    )
    assert 0 == e2e.run(job_path)
    _erased(_outcomes(tmp_path), "T1")


def test_a_hold_by_request_id_and_an_unknown_id_is_64(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    # the ledger must know the request: the first run stops at its preflight (wrong token)
    # and records the plan's pairs as planned
    code, _, err = _cli("hold", str(job), "--request-id", "T1", "--reason", "x")
    assert 64 == code and "never seen" in err  # no ledger yet
    monkeypatch.setenv("ALTCRAFT_TOKEN", "wrong-token")
    assert 77 == e2e.run(job)
    monkeypatch.setenv("ALTCRAFT_TOKEN", "sandbox-token")
    code, _, err = _cli("hold", str(job), "--request-id", "T404", "--reason", "x")
    assert 64 == code and "never seen" in err
    code, _, err = _cli("hold", str(job), "--request-id", "T1", "--reason", "audit")
    assert 0 == code, err
    assert 0 == e2e.run(job)
    outcomes = _outcomes(tmp_path)
    _erased(outcomes, "T2")
    assert outcomes[("T1", "email")] == "held" and outcomes[("T1", "phone")] == "held"


def test_cancel_sends_none_of_its_pairs_then_or_later_and_reopen_undoes_it(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    monkeypatch.setenv("ALTCRAFT_TOKEN", "wrong-token")
    assert 77 == e2e.run(job)  # T1 and T2 are pending in the ledger
    monkeypatch.setenv("ALTCRAFT_TOKEN", "sandbox-token")
    code, _, err = _cli("cancel", str(job), "--request-id", "T9", "--reason", "typo")
    assert 64 == code and "never seen" in err
    code, out, err = _cli("cancel", str(job), "--request-id", "T1", "--reason", "withdrawn")
    assert 0 == code, err
    assert 0 == e2e.run(job)
    _erased(_outcomes(tmp_path), "T2")
    sent = sandbox.stats()["requests"]
    # a later file naming T1 again sends none of it either
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone\nT1,user1@example.com,\nT1,user3@example.com,+79000000003\n"
    )
    assert 0 == e2e.run(job)
    assert sent == sandbox.stats()["requests"]
    t1 = {
        r["outcome"]
        for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")
        if r["request_id"] == "T1"
    }
    assert {"cancelled"} == t1  # the later file's new pair too
    code, out, _ = _cli("status", str(job), "--json")
    assert 1 == json.loads(out)["incomplete_reasons"]["cancelled"]
    # cancelling a finished request changes nothing and says so
    code, out, _ = _cli("cancel", str(job), "--request-id", "T2", "--reason", "late")
    assert 0 == code and "changes nothing" in out
    code, out, err = _cli("reopen", str(job), "--request-id", "T1", "--reason", "mistake")
    assert 0 == code, err
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone\nT1,user1@example.com,+79000000001\nT1,user3@example.com,+79000000003\n"
    )
    assert 0 == e2e.run(job)
    t1 = [
        r["outcome"]
        for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")
        if r["request_id"] == "T1"
    ]
    assert 4 == len(t1) and set(t1) <= {"erased", "not_found"} and "erased" in t1


def test_cancel_before_received_and_without_a_request_id_column(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    code, _, err = _cli(
        "cancel", str(job), "--request-id", "T1", "--reason", "duplicate", "--before-received"
    )
    assert 0 == code, err
    assert 0 == e2e.run(job)
    outcomes = _outcomes(tmp_path)
    assert {outcomes[("T1", "email")], outcomes[("T1", "phone")]} == {"cancelled"}
    assert 1 == len(_deleted(sandbox))  # user2's profile only
    nocol = e2e.job(write_job, sandbox.url, input={"request_id_column": None})
    code, _, err = _cli("cancel", str(nocol), "--request-id", "T2", "--reason", "x")
    assert 64 == code and "no request id column" in err


def test_a_hold_during_a_running_run_stops_that_identifier_within_seconds(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=60)
    e2e.emails_csv(tmp_path / "in.csv", range(40))
    job = e2e.job(write_job, sandbox.url, run={"concurrency": 1, "rate_per_s": 5})
    ledger = tmp_path / "ledger.sqlite"
    codes: list[int] = []
    runner = threading.Thread(
        target=lambda: codes.append(e2e.run_with(job, Options(install_signal_handlers=False)))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the run has begun sending
            if ledger.exists() and _count(ledger, "outcome") >= 1:
                break
            time.sleep(0.05)
        code, out, err = _cli("hold", str(job), "--email", "user39@example.com", "--reason", "L-9")
        assert 0 == code, err
        assert "a run holds the ledger" in out and "within seconds" in out
    finally:
        runner.join(timeout=60)
    assert [0] == codes
    outcomes = {r["request_id"]: r["outcome"] for r in e2e.ledger_pairs(ledger)}
    assert outcomes["T39"] == "held" and outcomes["T38"] == "erased"
    assert 1 == _count(ledger, "hold")  # the run appended the queued hold to its chain
    assert 0 == cli.main(["verify", str(job)])
    code, out, _ = _cli("holds", str(job))
    assert "queued" not in out and "L-9" in out


def _count(ledger: Path, kind: str) -> int:
    """Events of ``kind`` in the ledger (0 while a first run is still creating it)."""
    try:
        with closing(sqlite3.connect(f"{ledger.as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT count(*) FROM events WHERE kind = ?", (kind,)).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


def test_sweep_skips_a_held_profile(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    """A restored profile whose request is held is listed as held and not deleted again."""
    sweep = {"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email"}}
    e2e.emails_csv(tmp_path / "in.csv", range(4))
    job = e2e.job(write_job, sandbox.url, sweep=sweep)
    assert 0 == e2e.run(job)
    restored = sandbox.restore(last=2)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    held_rid = next(
        r["request_id"]
        for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")
        if r["profile_id"] == restored[0]
    )
    code, _, err = _cli("hold", str(job), "--request-id", held_rid, "--reason", "dispute")
    assert 0 == code, err
    code, out, _ = _cli("sweep", str(job), "--export", str(export), "--log-format", "json")
    assert 1 == code  # profiles came back: a person must look
    assert f"profile {restored[0]} reappeared" in out and "held" in out
    assert 1 == sandbox.deletes()[restored[0]]  # held: not deleted again
    assert 2 == sandbox.deletes()[restored[1]]


def test_the_report_shows_held_and_cancelled_with_their_reasons(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone\nT1,user1@example.com,\nT2,user2@example.com,\nT3,user3@example.com,\n"
    )
    job = _job(write_job, sandbox)
    assert 0 == _cli("hold", str(job), "--email", "user1@example.com", "--reason", "L-7")[0]
    assert (
        0
        == _cli("cancel", str(job), "--request-id", "T2", "--reason", "dup", "--before-received")[0]
    )
    assert 0 == e2e.run(job)
    out = tmp_path / "report.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(out)])
    import csv

    with out.open(encoding="utf-8-sig") as f:
        rows = {r["request_id"]: r for r in csv.DictReader(f)}
    assert rows["T1"]["outcome"] == "held" and "L-7" in rows["T1"]["decision"]
    assert rows["T1"]["request_reason"] == "held"
    assert rows["T2"]["outcome"] == "cancelled" and "dup" in rows["T2"]["decision"]
    assert rows["T2"]["request_reason"] == "cancelled"
    assert rows["T3"]["outcome"] == "erased" and rows["T3"]["decision"] == ""
    assert "user1" not in out.read_text(encoding="utf-8-sig")
    assert 0 == cli.main(["verify", str(job)])


def test_a_file_with_held_pairs_is_not_safe_to_delete(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """A release sends the held pair from the file that brought it: status keeps it."""
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    assert 0 == _cli("hold", str(job), "--email", "user1@example.com", "--reason", "L-7")[0]
    assert 0 == e2e.run(job)
    out = _cli("status", str(job), "--json")[1]
    assert [] == json.loads(out)["safe_to_delete"]
    assert 0 == _cli("release", str(job), "--email", "user1@example.com", "--reason", "done")[0]
    (tmp_path / "other.csv").write_text("ticket,email,phone\nT3,user3@example.com,\n")
    assert 0 == e2e.run(job, "--input", str(tmp_path / "other.csv"))  # carries T1 over
    outcomes = _outcomes(tmp_path)
    _erased(outcomes, "T1")
    out = _cli("status", str(job), "--json")[1]
    assert {"in.csv", "other.csv"} == {f["file"] for f in json.loads(out)["safe_to_delete"]}


def test_the_run_says_how_many_pairs_a_decision_held_back(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job = _job(write_job, sandbox)
    assert 0 == _cli("hold", str(job), "--email", "user1@example.com", "--reason", "L-7")[0]
    code, out, err = _cli("run", str(job), "--no-progress", "--log-format", "console")
    assert 0 == code, err
    assert "held back by a person's decision (a hold or a cancellation): 2 pairs" in out
    code, out, _ = _cli("validate", str(job))
    assert "held (a legal hold) 2" in out


def test_a_passed_hold_does_not_end_another_hold_on_the_same_identifier(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=5)
    _two_tickets(tmp_path)
    job_path = _job(write_job, sandbox)
    job = job_mod.load(job_path)
    person = decide.Selector(matching="email", raw="user1@example.com")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    decide.hold(job, person, "a first claim", two_days_ago.date().isoformat(), now=two_days_ago)
    decide.hold(job, person, "a second claim, open-ended")
    assert 0 == e2e.run(job_path)
    outcomes = _outcomes(tmp_path)
    assert outcomes[("T1", "email")] == outcomes[("T1", "phone")] == "held"
    out = _cli("holds", str(job_path), "--json")[1]
    assert ["a second claim, open-ended"] == [h["reason"] for h in json.loads(out)["holds"]]
    assert 0 == cli.main(["verify", str(job_path)])
