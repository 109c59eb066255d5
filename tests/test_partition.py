"""The partition of incomplete requests: one rule, counted the same everywhere (issue 21).

The rule is a table (erasure.partition.RULES); its SQL and polars forms are
generated from it and must agree with it on every combination of counts.
Then one ledger, read by status, ``status --json``, every report format and
the HTML headline: a request whose every cell was unusable is counted
``no_identifier`` (it used to read "no usable identifier 0").
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from erasure import cli, partition, report, status
from erasure import job as job_mod
from erasure import ledger as L
from erasure.partition import Reason
from tests.test_ledger_state import _migrated_copy
from tests.test_report import KEYER, A, B, C, D, _ev, _outcome, _planned, _started, page_counts

NOW = datetime.now(UTC)
NEW_COLUMNS = ["request_status", "request_reason", "original_deadline", "suppressed", "decision"]


def test_the_reasons_are_the_contract_s_in_its_order() -> None:
    assert [r.value for r in partition.REASONS] == [
        "no_identifier",
        "held",
        "cancelled",
        "rejected",
        "invalid",
        "open",
    ]
    assert [r.reason for r in partition.RULES] == list(Reason)


def _grid() -> list[dict[str, int]]:
    out = []
    for pairs, done, rejected, held, cancelled, invalid in itertools.product(
        range(3), range(3), range(2), range(2), range(2), range(2)
    ):
        if done + rejected + held + cancelled > pairs:
            continue
        for erased in range(done + 1):
            out.append(
                {
                    "pairs": pairs,
                    "erased": erased,
                    "not_found": done - erased,
                    "rejected": rejected,
                    "held": held,
                    "cancelled": cancelled,
                    "invalid_unresolved": invalid,
                }
            )
    return out


def test_sql_and_polars_forms_agree_with_the_table() -> None:
    """Every combination of counts: the generated SQL, the polars form and the table agree."""
    grid = _grid()
    frame = pl.DataFrame(grid).with_columns(partition.polars().alias("state"))
    db = sqlite3.connect(":memory:")
    cols = ", ".join(f"? AS {c}" for c in partition.COUNTS)
    for counts, by_polars in zip(grid, frame["state"].to_list(), strict=True):
        values = [counts[c] for c in partition.COUNTS]
        query = f"SELECT {partition.sql('r')} FROM (SELECT {cols}) r"
        (by_sql,) = db.execute(query, values).fetchone()
        is_request = counts["pairs"] + counts["invalid_unresolved"] > 0
        reason = partition.reason_of(counts)
        expected = None if not is_request else (reason.value if reason else partition.COMPLETE)
        assert by_sql == by_polars == expected, counts
    # the order decides: a request with no identifier and an invalid record is no_identifier
    assert partition.reason_of({"pairs": 0, "invalid_unresolved": 2}) is Reason.NO_IDENTIFIER
    assert partition.reason_of({"pairs": 2, "rejected": 1, "erased": 1}) is Reason.REJECTED
    assert partition.reason_of({"pairs": 1, "erased": 1}) is None


def _invalid(run: int, rid: str, row: int, reason: str) -> L.Event:
    detail = {"input": "ab" * 32, "row": row, "column": "Email", "reason": reason, "words": "x"}
    return _ev(L.Kind.INVALID, run, request_id=rid, detail=json.dumps(detail))


def _ledger(path: Path) -> None:
    """N1: every cell unusable (no identifier); R1: rejected and an invalid cell; I1: an
    invalid cell beside an erased identifier; O1: pending; K1: complete."""
    with L.Ledger(path, KEYER) as led:
        led.append(
            [
                _started(1),
                _planned(1, "R1", A, None),
                _planned(1, "I1", B, None),
                _planned(1, "O1", C, None),
                _planned(1, "K1", D, None),
                _invalid(1, "N1", 2, "email_invalid"),
                _invalid(1, "N1", 3, "no_identifier"),
                _invalid(1, "R1", 4, "phone_invalid"),
                _invalid(1, "I1", 5, "phone_invalid"),
                _outcome(1, "R1", A, "rejected", error_code=400, http_status=400),
                _outcome(1, "I1", B, "erased", error_code=0, http_status=200),
                _outcome(1, "K1", D, "not_found", error_code=404, http_status=200),
            ]
        )


EXPECTED = {
    "no_identifier": 1,
    "held": 0,
    "cancelled": 0,
    "rejected": 1,
    "invalid": 1,
    "open": 1,
}
STATES = {
    "N1": ("incomplete", "no_identifier"),
    "R1": ("incomplete", "rejected"),
    "I1": ("incomplete", "invalid"),
    "O1": ("incomplete", "open"),
    "K1": ("complete", ""),
}


@pytest.mark.parametrize("kept", [True, False], ids=["derived-state", "replayed"])
def test_status_counts_every_reason_by_the_one_rule(tmp_path: Path, kept: bool) -> None:
    path = tmp_path / "l.sqlite"
    _ledger(path)
    if not kept:  # the state a migration replays from every event
        path = _migrated_copy(path, tmp_path, KEYER)
    with closing(L.open_readonly(path)) as db:
        info = status.status(db, now=NOW).as_json()
    assert info["incomplete_reasons"] == EXPECTED
    assert info["accounting"]["incomplete_reasons"] == EXPECTED
    assert (info["requests"], info["accounting"]["complete"]) == (5, 1)
    assert "1 with no usable identifier" in info["verdict"]


def test_every_report_format_carries_the_request_s_state(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    job = job_mod.load(write_job())
    _ledger(job.ledger.path)
    legacy = _migrated_copy(job.ledger.path, tmp_path, KEYER)
    with closing(L.open_readonly(job.ledger.path)) as db, closing(L.open_readonly(legacy)) as old:
        for source in (db, old):
            rows = report.table(source, now=NOW)
            assert rows.columns[-6:] == ["reappeared", *NEW_COLUMNS]
            got = {
                r["request_id"]: (r["request_status"], r["request_reason"] or "")
                for r in rows.iter_rows(named=True)
            }
            assert got == STATES
        for rid, (state, why) in STATES.items():  # one request's report: the same state
            one = report.table(db, now=NOW, request_id=rid)
            assert set(one["request_status"]) == {state}
            assert set(one["request_reason"].fill_null("")) == {why}
        run = report.table(db, now=NOW, run=1)  # one run's report: each request as a whole
        assert dict(run.select("request_id", "request_reason").unique().iter_rows())["R1"] == (
            "rejected"
        )
        report.write(db, job, tmp_path / "r.csv", now=NOW)
        report.write(db, job, tmp_path / "r.parquet", now=NOW)
        report.write(db, job, tmp_path / "r.xlsx", now=NOW)
        report.write(db, job, tmp_path / "r.html", now=NOW)
    for frame in (
        pl.read_csv(tmp_path / "r.csv", infer_schema=False),
        pl.read_parquet(tmp_path / "r.parquet"),
        pl.read_excel(tmp_path / "r.xlsx", sheet_name="Identifiers"),
    ):
        assert frame.columns[-5:] == NEW_COLUMNS
        n1 = frame.filter(pl.col("request_id") == "N1")
        assert set(n1["request_reason"]) == {"no_identifier"}
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    shown = page_counts(page)
    assert {r: shown[f"reason_{r}"] for r in EXPECTED} == EXPECTED


def test_status_json_and_text_name_the_reasons(
    write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_job()
    _ledger(job_mod.load(path).ledger.path)
    assert 0 == cli.main(["status", str(path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["incomplete_reasons"] == EXPECTED
    assert 0 == cli.main(["status", str(path)])
    text = capsys.readouterr().out
    assert "with no usable identifier 1" in text
