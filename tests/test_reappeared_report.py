"""Profiles found again by ``sweep``, in status, status --json and every report.

Against the real sandbox: ten people erased, a backup restored (two come back
with their old profile ids), one person re-imported (a new profile sharing
an email); a sweep erases the two again and lists the third for a decision.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest

from erasure import cli
from erasure.ledger import open_readonly
from erasure.status import reappeared_profiles, reappeared_records
from tests import e2e
from tests.sandbox_fixture import Sandbox
from tests.test_report import page_counts

SWEEP = {"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email", "phone": "phone"}}


def _swept(write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path) -> Path:
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    job = e2e.job(write_job, sandbox.url, sweep=SWEEP)
    assert 0 == e2e.run(job)
    # user8 and user9 come back with their old profile ids (by id: the run's
    # deletes finish in no fixed order, so "the last two" could be anyone)
    with closing(open_readonly(tmp_path / "ledger.sqlite")) as db:
        ids = [
            pid
            for (pid,) in db.execute(
                "SELECT profile_id FROM events WHERE kind = 'outcome'"
                " AND request_id IN ('T8', 'T9') ORDER BY request_id"
            )
        ]
    assert 2 == len(sandbox.restore(ids))
    sandbox.reimport(email="user3@example.com")  # a new profile naming T3's person
    export = tmp_path / "export.csv"
    sandbox.export(export)
    assert 1 == cli.main(["sweep", str(job), "--export", str(export), "--log-format", "json"])
    return job


def _flags(frame: pl.DataFrame) -> dict[str, list[bool]]:
    """Request id -> the reappeared flags of its rows, in order."""
    out: dict[str, list[bool]] = {}
    for rid, flag in frame.select("request_id", "reappeared").iter_rows():
        out.setdefault(rid, []).append(flag in (True, "true"))
    return out


def test_reappeared_in_status_and_every_report(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = _swept(write_job, sandbox, tmp_path)
    capsys.readouterr()

    assert 0 == cli.main(["status", str(job), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["reappeared"] == {
        "profiles": 3,
        "by_profile_id": 2,
        "by_identifier": 1,
        "erased_again": 2,
        "delete_open": 0,
        "waiting": 1,
    }
    assert 0 == cli.main(["status", str(job)])
    out = capsys.readouterr().out
    assert (
        "reappeared: 3 profiles came back after erasure (2 by profile id, 1 by identifier"
        " only): 2 erased again, 1 waiting for a decision, 0 deleted with no final answer yet"
    ) in out

    assert 0 == cli.main(["status", str(job), "--request-id", "T8"])
    assert "(reappeared: found again by sweep)" in capsys.readouterr().out

    reports = {}
    for suffix in (".csv", ".parquet", ".xlsx", ".html"):
        out_path = tmp_path / f"report{suffix}"
        assert 0 == cli.main(["report", str(job), "--out", str(out_path)])
        reports[suffix] = out_path
    csv = pl.read_csv(reports[".csv"], infer_schema=False)
    parquet = pl.read_parquet(reports[".parquet"])
    xlsx = pl.read_excel(reports[".xlsx"], sheet_name="Identifiers")
    for frame in (csv, parquet, xlsx):
        assert frame.columns[-6] == "reappeared"  # then the request state columns
        flags = _flags(frame)
        # T8, T9: the first erasure by email (the delete by profile id that followed is a
        # sweep's, counted apart from the pairs: the Reappeared sheet and section show it)
        assert flags["T8"] == [True] and flags["T9"] == [True]
        assert flags["T3"] == [True]  # the re-imported person: the matching key, nothing sent
        assert not any(any(flags[f"T{i}"]) for i in (0, 1, 2, 4, 5, 6, 7))
    assert parquet.schema["reappeared"] == pl.Boolean
    again = csv.filter(pl.col("request_id") == "T8")
    assert again["matching"].to_list() == ["email"]
    assert again["outcome"].to_list() == ["erased"]

    sheet = pl.read_excel(reports[".xlsx"], sheet_name="Reappeared")
    assert sorted(sheet["now"].to_list()) == ["erased_again", "erased_again", "waiting"]
    assert sheet.schema["first_erased_at"] == pl.Datetime("ms")  # a real date and time

    page = reports[".html"].read_text(encoding="utf-8")
    section = page[page.index('id="reappeared"') : page.index('id="all"')]
    shown = page_counts(section)
    assert (shown["reappeared"], shown["erased_again"], shown["waiting"]) == (3, 2, 1)
    assert section.count("<tr>") == 1 + 3  # the header and one row per profile
    assert "waits for a decision" in section and "--include-identifier-matches" in section
    assert section.index("waits for a decision") < section.index("erased again</td>")
    with closing(open_readonly(job.parent / "ledger.sqlite")) as db:
        profiles = reappeared_profiles(reappeared_records(db))
    for row in profiles.iter_rows(named=True):
        assert row["profile_id"] in section
        assert row["first_erased_at"] is not None
        assert (row["erased_again_at"] is None) == (row["now"] == "waiting")
    assert "@example.com" not in page  # keys and profile ids only, never the identifier


def test_a_decided_identifier_match_is_erased_again(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    """--include-identifier-matches: the waiting profile is deleted and no longer waits."""
    job = _swept(write_job, sandbox, tmp_path)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    args = ["sweep", str(job), "--export", str(export), "--log-format", "json"]
    assert 1 == cli.main([*args, "--include-identifier-matches"])
    with closing(open_readonly(job.parent / "ledger.sqlite")) as db:
        profiles = reappeared_profiles(reappeared_records(db))
    assert profiles["now"].to_list() == ["erased_again"] * 3
    assert profiles.filter(pl.col("match") == "identifier")["request_id"].to_list() == ["T3"]


def test_status_and_report_on_a_swept_ledger_load_no_network_code(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    """The read-only commands read the sweep's events from ledger/, not the sweep itself.

    The sweep module loads the run, httpx and aiohttp (100 modules, 0.3 s):
    status and report of a ledger with reappeared profiles must not.
    """
    job = str(_swept(write_job, sandbox, tmp_path))
    out = str(tmp_path / "r.html")
    code = (
        "import json, sys\n"
        "from erasure import cli\n"
        f"codes = [cli.main(['status', {job!r}]), cli.main(['status', {job!r}, '--json']),\n"
        f"         cli.main(['report', {job!r}, '--out', {out!r}])]\n"
        "heavy = {'httpx', 'anyio', 'aiohttp', 'erasure.run', 'erasure.after.sweep'}\n"
        "print(json.dumps([codes, sorted(heavy & set(sys.modules))]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "reappeared: 3 profiles came back" in done.stdout, done.stderr
    assert [[0, 0, 0], []] == json.loads(done.stdout.splitlines()[-1])
