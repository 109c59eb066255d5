"""erasure extend, and deadlines in force over a real ledger (status, report, receipt rule).

Ledgers are written by the ledger's own writer; the run's recorded settings
carry the deadline rule, as a real run records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from erasure import cli, deadline_table, status
from erasure import ledger as L
from tests.ledger_details import extended, started
from tests.test_report import KEYER, A, B, _ev, _outcome, _planned

NOW = datetime.now(UTC)


def _ledger(path: Path, settings: dict[str, object], *events: L.Event) -> None:
    with L.Ledger(path, KEYER) as led:
        led.append([_ev(L.Kind.RUN_STARTED, 1, detail=started(settings)), *events])


def _job(write_job: Callable[..., Path], **input_: object) -> Path:
    return write_job(input=input_)


def test_a_moscow_deadline_is_an_instant_with_its_offset_and_compared_as_one(
    tmp_path: Path,
) -> None:
    """Received 2 March 2026 in Moscow: 10 working days (9 March is a day off) end on the 17th."""
    settings = {"deadline": "152fz-answer", "timezone": "Europe/Moscow", "calendar": "RU"}
    _ledger(
        tmp_path / "l.sqlite",
        settings,
        _planned(1, "T1", A, "2026-03-01T21:30:00+00:00"),  # 00:30 on 2 March in Moscow
        _planned(1, "T2", B, "2026-03-01T20:30:00+00:00"),  # 23:30 on 1 March (a Sunday)
    )
    with closing(L.open_readonly(tmp_path / "l.sqlite")) as db:
        on_time = datetime(2026, 3, 17, 20, 59, tzinfo=UTC)  # 23:59 in Moscow
        rows = {r["request_id"]: r for r in status.pairs(db, now=on_time).iter_rows(named=True)}
        assert rows["T1"]["deadline"] == "2026-03-17T23:59:59+03:00"
        assert rows["T2"]["deadline"] == "2026-03-16T23:59:59+03:00"
        assert (rows["T1"]["overdue"], rows["T2"]["overdue"]) == (False, True)
        late = datetime(2026, 3, 17, 21, 0, tzinfo=UTC)  # midnight in Moscow
        rows = {r["request_id"]: r for r in status.pairs(db, now=late).iter_rows(named=True)}
        assert (rows["T1"]["overdue"], rows["T2"]["overdue"]) == (True, True)
        # the kept summaries (SQL) count the same as the rows
        rule, ext = deadline_table.rule_of(db), deadline_table.extensions_of(db)
        assert deadline_table.overdue_count(db, rule, ext, now=on_time) == 1
        assert deadline_table.deadline_flags(db, rule, ext, now=on_time) == (1, 0)
        assert deadline_table.overdue_count(db, rule, ext, now=late) == 2


def test_a_received_date_outside_the_calendar_is_one_line_78(
    tmp_path: Path, write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _ledger(
        tmp_path / "ledger.sqlite",
        {"deadline": "152fz-unlawful", "timezone": "UTC", "calendar": "RU"},
        _planned(1, "T1", A, "2023-05-02T10:00:00+00:00"),
    )
    job = _job(write_job, db_id=1, path="in.csv")
    assert 78 == cli.main(["report", str(job), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert "outside the shipped RU production calendar" in err and err.count("\n") == 1


def _received_days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).replace(microsecond=0).isoformat()


def test_extend_within_the_limit_moves_the_deadline_and_reports_show_both(
    tmp_path: Path, write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _ledger(
        tmp_path / "ledger.sqlite",
        {"deadline": "10 days", "extension_max": "10 days", "timezone": "UTC"},
        _planned(1, "T1", A, _received_days_ago(5)),
        _planned(1, "T2", B, _received_days_ago(5)),
    )
    assert 0 == cli.main(["keygen", "--out", str(tmp_path / "r.key")])
    job = write_job(
        input={"deadline": "10 days", "extension_max": "10 days"},
        receipts={"signing_key_file": "r.key", "issuer": "ACME LLC, DPO office"},
    )
    told = (NOW - timedelta(hours=1)).isoformat()
    args = ["extend", str(job), "--request-id", "T1", "--informed-at", told, "--reason", "busy"]
    assert 0 == cli.main([*args, "--by", "4 days"])
    out = capsys.readouterr().out
    received = (NOW - timedelta(days=5)).date()
    original = f"{(received + timedelta(days=10)).isoformat()}T23:59:59+00:00"
    extended = f"{(received + timedelta(days=14)).isoformat()}T23:59:59+00:00"
    assert f"deadline extended to {extended}" in out and f"original deadline: {original}" in out
    # a second one adds up against the same limit (10 days beyond the original)
    assert 78 == cli.main([*args, "--by", "7 days"])
    assert "beyond the rule's limit" in capsys.readouterr().err
    assert 0 == cli.main([*args, "--by", "6 days"])
    capsys.readouterr()
    with closing(L.open_readonly(tmp_path / "ledger.sqlite")) as db:
        rows = {r["request_id"]: r for r in status.pairs(db).iter_rows(named=True)}
        [event] = db.execute(
            "SELECT detail FROM events WHERE kind = 'extended' ORDER BY seq DESC LIMIT 1"
        ).fetchall()
    final = f"{(received + timedelta(days=20)).isoformat()}T23:59:59+00:00"
    assert rows["T1"]["deadline"] == final
    assert rows["T2"]["deadline"] == original  # another request is untouched
    detail = json.loads(event[0])
    assert detail["reason"] == "busy" and detail["extended_to"] == final[:10]
    assert "@" in detail["who"] and detail["informed_at"].startswith(told[:16])
    csv = tmp_path / "r.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(csv)])
    report = pl.read_csv(csv, infer_schema=False)
    got = {r["request_id"]: (r["deadline"], r["original_deadline"]) for r in report.to_dicts()}
    assert got == {"T1": (final, original), "T2": (original, None)}
    # the receipt shows both, signed; one without an extension keeps its earlier shape
    for rid in ("T1", "T2"):
        assert 0 == cli.main(
            ["receipt", str(job), "--request-id", rid, "--out", f"{tmp_path}/{rid}.json"]
        )
        assert 0 == cli.main(
            ["receipt", str(job), "--request-id", rid, "--out", f"{tmp_path}/{rid}.html"]
        )
    signed = json.loads((tmp_path / "T1.json").read_text())["receipt"]["request"]
    assert (signed["deadline"], signed["original_deadline"]) == (final, original)
    assert (
        "original_deadline"
        not in json.loads((tmp_path / "T2.json").read_text())["receipt"]["request"]
    )
    page = (tmp_path / "T1.html").read_text(encoding="utf-8")
    assert f"<dt>Original deadline</dt><dd>{original} (extended)</dd>" in page
    capsys.readouterr()
    pub = str(tmp_path / "r.key.pub")
    assert 0 == cli.main(
        ["check-receipt", str(tmp_path / "T1.html"), "--public-key", pub, "--job", str(job)]
    )


def test_extend_refuses_after_the_deadline_without_extension_and_for_unknown_ids(
    tmp_path: Path, write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _ledger(
        tmp_path / "ledger.sqlite",
        {"deadline": "10 days", "extension_max": "1 month", "timezone": "UTC"},
        _planned(1, "LATE", A, _received_days_ago(40)),
        _outcome(1, "LATE", A, "erased"),
    )
    job = _job(write_job, deadline="10 days", extension_max="1 month")
    base = ["extend", str(job), "--informed-at", "2026-01-01", "--reason", "x", "--by", "5 days"]
    assert 78 == cli.main([*base, "--request-id", "LATE"])
    assert "has passed" in capsys.readouterr().err
    assert 64 == cli.main([*base, "--request-id", "NEVER"])
    assert "the ledger has never seen request 'NEVER'" in capsys.readouterr().err
    assert 64 == cli.main([*base[:-2], "--by", "a while", "--request-id", "LATE"])
    capsys.readouterr()
    with closing(L.open_readonly(tmp_path / "ledger.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM events WHERE kind = 'extended'").fetchone() == (0,)
        [row] = status.pairs(db).iter_rows(named=True)
    assert row["overdue"] is True  # finished after its deadline


def test_a_preset_without_extension_refuses_one(
    tmp_path: Path, write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _ledger(
        tmp_path / "ledger.sqlite",
        {"deadline": "152fz-withdrawal", "timezone": "UTC"},
        _planned(1, "T1", A, _received_days_ago(1)),
    )
    job = _job(write_job, deadline="152fz-withdrawal")
    told = NOW.date().isoformat()
    args = ["extend", str(job), "--request-id", "T1", "--informed-at", told, "--reason", "x"]
    assert 78 == cli.main([*args, "--by", "1 day"])
    assert 'the deadline rule "152fz-withdrawal" allows no extension' in capsys.readouterr().err


def test_an_extension_recorded_late_never_clears_a_lateness(tmp_path: Path) -> None:
    """Written past the command (a hand-made event): the deadline in force when it passed holds."""
    late = extended((NOW + timedelta(days=30)).date().isoformat())
    _ledger(
        tmp_path / "l.sqlite",
        {"deadline": "10 days", "extension_max": "2 months", "timezone": "UTC"},
        _planned(1, "T1", A, _received_days_ago(40)),
        _ev(L.Kind.EXTENDED, 0, request_id="T1", detail=late),
    )
    with closing(L.open_readonly(tmp_path / "l.sqlite")) as db:
        [row] = status.pairs(db).iter_rows(named=True)
        rule, ext = deadline_table.rule_of(db), deadline_table.extensions_of(db)
        assert deadline_table.overdue_count(db, rule, ext, now=NOW) == 1
    assert row["overdue"] is True
    assert row["deadline"].startswith((NOW - timedelta(days=30)).date().isoformat())


def test_a_job_reads_the_deadline_keys_and_refuses_bad_ones(
    write_job: Callable[..., Path],
) -> None:
    from erasure import job as job_mod
    from erasure.errors import ConfigError

    job = job_mod.load(_job(write_job, deadline="gdpr", timezone="Europe/Moscow"))
    assert (job.input.deadline.name, job.input.deadline.timezone) == ("gdpr", "Europe/Moscow")
    assert job.settings()["deadline"] == "gdpr" and job.settings()["timezone"] == "Europe/Moscow"
    with pytest.raises(ConfigError, match=r"job file: \[input\] timezone = \"Nowhere\""):
        job_mod.load(_job(write_job, timezone="Nowhere"))
    with pytest.raises(ConfigError, match=r"unknown key input\.deadlines"):
        job_mod.load(_job(write_job, deadlines="gdpr"))


def test_validate_and_run_refuse_a_received_date_outside_the_calendar(
    tmp_path: Path, write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is planned or sent (78, one line), not guessed at report time."""
    (tmp_path / "in.csv").write_text(
        "ticket,email,received_at\nT1,user1@example.com,2026-11-30\n"
        "T2,user2@example.com,2023-05-02\n",
        encoding="utf-8",
    )
    job = write_job(
        input={
            "path": "in.csv",
            "db_id": 1,
            "request_id_column": "ticket",
            "received_at_column": "received_at",
            "deadline": "152fz-answer",
        }
    )
    for command in ("validate", "run"):
        capsys.readouterr()
        assert 78 == cli.main([command, str(job)])
        err = capsys.readouterr().err
        assert "2023-05-0" in err and "outside the shipped RU production calendar" in err
        assert err.count("\n") == 1
    assert not (tmp_path / "ledger.sqlite").exists() or 0 == len(
        [e for e in e2e_events(tmp_path / "ledger.sqlite") if e == "sent"]
    )


def e2e_events(path: Path) -> list[str]:
    with closing(L.open_readonly(path)) as db:
        return [kind for (kind,) in db.execute("SELECT kind FROM events")]


def test_extensions_are_read_by_index_not_by_a_scan_of_the_history(tmp_path: Path) -> None:
    """Every report reads the extensions: a ledger of this release finds them by index."""
    _ledger(tmp_path / "l.sqlite", {"deadline": "10 days"}, _planned(1, "T1", A, None))
    with closing(L.open_readonly(tmp_path / "l.sqlite")) as db:
        plan = db.execute(f"EXPLAIN QUERY PLAN {deadline_table.EXTENSIONS_SQL}").fetchall()
    assert "USING INDEX events_extended" in " ".join(str(step[-1]) for step in plan)
