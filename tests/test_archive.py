"""Archiving: a round trip through the CLI on a ledger a real run wrote."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox

TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


def test_archive_round_trip(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """archive, verify with and without it, then resume, lookup, status and report still answer."""
    sandbox = sandbox_factory(generate_count=10)
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    ledger = tmp_path / "ledger.sqlite"
    out = tmp_path / "archive-1.sqlite"
    capsys.readouterr()
    assert 0 == cli.main(["verify", str(job)])
    [old_head] = [
        line.removeprefix("head: ")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("head: ")
    ]

    assert 0 == cli.main(["status", str(job), "--json"])
    before = json.loads(capsys.readouterr().out)
    assert before["erased"] == 5 and before["requests"] == 5 and before["invalid"] == 0
    assert 0 == cli.main(["status", str(job), "--request-id", "T3", "--json"])
    before_t3 = capsys.readouterr().out
    assert '"T3"' in before_t3 and "erased" in before_t3

    assert 0 == cli.main(["archive", str(job), "--before", TOMORROW, "--out", str(out)])
    said = capsys.readouterr().out
    assert "archived: events 1 to" in said
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ledger).st_mode) == 0o600
    with (  # sealed
        closing(sqlite3.connect(out)) as arch,
        pytest.raises(sqlite3.IntegrityError, match="sealed"),
    ):
        arch.execute("INSERT INTO meta VALUES ('x', 'y')")
    [(kept, first)] = e2e.events(ledger, "SELECT count(*), min(seq) FROM events")
    assert kept == 1 and first > 1  # only the archive record: every run ended before tomorrow

    # verify: the live ledger alone (the archive noted), then both as one chain
    assert 0 == cli.main(["verify", str(job)])
    said = capsys.readouterr().out
    assert "ledger intact" in said and "not checked" in said
    assert 0 == cli.main(["verify", str(job), "--archive", str(out)])
    said = capsys.readouterr().out
    assert "ledger intact" in said and "not checked" not in said
    # a head printed before the archive still checks what follows
    assert 0 == cli.main(["verify", str(job), "--from", old_head])
    capsys.readouterr()

    # every command still answers for the archived requests
    assert 0 == cli.main(["lookup", str(job), "--email", "user3@example.com"])
    assert "request T3: erased" in capsys.readouterr().out
    assert 0 == cli.main(["status", str(job)])
    said = capsys.readouterr().out
    assert "Every request is complete: all 5 fully erased." in said
    assert "(request, identifier) pairs 5 = erased 5 + " in said
    assert 0 == cli.main(["status", str(job), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info == {**before, "chain_head": info["chain_head"]}  # as before the archive
    assert 0 == cli.main(["status", str(job), "--request-id", "T3", "--json"])
    assert capsys.readouterr().out == before_t3
    report = tmp_path / "r.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(report), "--request-id", "T3"])
    _header, *rows = report.read_text(encoding="utf-8").splitlines()
    assert 1 == len(rows) and rows[0].startswith("T3,") and ",erased," in rows[0]
    requests_before = sandbox.stats()["requests"]
    assert 0 == e2e.run(job)  # resume: a finished pair in an archive is still finished
    assert sandbox.stats()["requests"] - requests_before <= 1  # the preflight at most
    capsys.readouterr()
    assert 0 == cli.main(["verify", str(job), "--archive", str(out)])
    assert "ledger intact" in capsys.readouterr().out

    # a changed archive is found, and so is a changed archived state in the live ledger
    with closing(sqlite3.connect(out)) as arch:
        arch.execute("DROP TRIGGER events_no_update")
        arch.execute("UPDATE events SET outcome = 'rejected' WHERE kind = 'outcome'")
        arch.commit()
    assert 1 == cli.main(["verify", str(job), "--archive", str(out)])
    assert "BROKEN" in capsys.readouterr().out
    with closing(sqlite3.connect(ledger)) as db:
        db.execute("DROP TRIGGER base_pair_state_no_update")
        db.execute("UPDATE base_pair_state SET outcome = 'rejected'")
        db.commit()
    assert 1 == cli.main(["verify", str(job)])
    assert "archived pairs' state" in capsys.readouterr().out
