"""The compliance report, read back in each format from a real ledger."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from erasure import cli, report
from erasure import job as job_mod
from erasure import ledger as L
from erasure.errors import OutputError, UsageError
from erasure.keys import Keyer
from erasure.report import html as report_html
from erasure.status import REPORT_COLUMNS, status
from tests.conftest import LEDGER_KEY

KEYER = Keyer(LEDGER_KEY.encode())
COLUMNS = [
    *REPORT_COLUMNS,
    *("row", "column", "reason", "deadline", "overdue", "reappeared"),
    *("request_status", "request_reason", "original_deadline", "suppressed", "decision"),
]
A, B, C, D, E, F, G = (ch * 32 for ch in "abcdef0")
OLD = (datetime.now(UTC) - timedelta(days=90)).isoformat()  # deadline long passed
NEW = (datetime.now(UTC) - timedelta(days=1)).isoformat()  # deadline ahead
EVIL = '=HYPERLINK("http://example.com/x","<b>click</b>")'


def _ev(kind: L.Kind, run: int, **kw: object) -> L.Event:
    return L.Event(kind, run, **kw)  # type: ignore[arg-type]


def _planned(run: int, rid: str | None, key: str, received: str | None, **kw: object) -> L.Event:
    return _ev(
        L.Kind.PLANNED,
        run,
        key=key,
        request_id=rid,
        db_id=1,
        matching=kw.pop("matching", "email"),
        received_at=received,
        **kw,
    )


def _outcome(run: int, rid: str | None, key: str, outcome: str, **kw: object) -> L.Event:
    return _ev(
        L.Kind.OUTCOME,
        run,
        key=key,
        request_id=rid,
        attempt=kw.pop("attempt", 1),
        outcome=outcome,
        in_doubt=kw.pop("in_doubt", 0),
        **kw,
    )


def _started(run: int) -> L.Event:
    detail = {
        "settings": {"deadline_days": 30},
        "input": {"sha256": "ab" * 32, "rows": 7},
        "plan": {"pairs": 7},
    }
    return _ev(L.Kind.RUN_STARTED, run, detail=json.dumps(detail))


def build_ledger(path: Path, *, received: bool = True) -> None:
    """Two runs over seven pairs: every outcome, in doubt, overdue, a formula-like text.

    T1: A erased, B not_found (request erased). T2: C rejected with a formula
    text, received long ago (overdue). T3: D sent, killed, sent again in run 2:
    not_found in doubt. @T4: E never sent, received long ago (overdue, pending).
    T5: F failed, G erased with a profile id beginning with '+'. T6 (run 2):
    A again, a person who asked twice: erased.
    """
    old, new = (OLD, NEW) if received else (None, None)
    run1 = [
        _started(1),
        _planned(1, "T1", A, new),
        _planned(1, "T1", B, new, matching="phone"),
        _planned(1, "T2", C, old),
        _planned(1, "T3", D, new),
        _planned(1, "@T4", E, old),
        _planned(1, "T5", F, new),
        _planned(1, "T5", G, new, matching="profile_id"),
        _ev(L.Kind.SENT, 1, key=A, attempt=1),
        _outcome(1, "T1", A, "erased", profile_id="101", error_code=0, http_status=200),
        _ev(L.Kind.SENT, 1, key=B, attempt=1),
        _outcome(1, "T1", B, "not_found", error_code=404, http_status=200),
        _ev(L.Kind.SENT, 1, key=C, attempt=1),
        _outcome(1, "T2", C, "rejected", error_code=400, error_text=EVIL, http_status=400),
        _ev(L.Kind.SENT, 1, key=F, attempt=1),
        _ev(L.Kind.ATTEMPT, 1, key=F, attempt=1, http_status=503, error_text="busy"),
        _ev(L.Kind.SENT, 1, key=F, attempt=2),
        _outcome(1, "T5", F, "failed", attempt=2, http_status=503, error_text="-busy"),
        _ev(L.Kind.SENT, 1, key=G, attempt=1),
        _outcome(1, "T5", G, "erased", profile_id="+7001", error_code=0, http_status=200),
        _ev(L.Kind.SENT, 1, key=D, attempt=1),  # killed here: no answer recorded
    ]
    run2 = [
        _started(2),
        _planned(2, "T6", A, new),
        _ev(L.Kind.SENT, 2, key=D, attempt=1),
        _outcome(2, "T3", D, "not_found", in_doubt=1, error_code=404, http_status=200),
        _ev(L.Kind.SENT, 2, key=A, attempt=1),
        _outcome(2, "T6", A, "erased", profile_id="102", error_code=0, http_status=200),
        _ev(
            L.Kind.RUN_FINISHED,
            2,
            detail=json.dumps(
                {"exit_code": 1, "outcomes": {"erased": 1, "not_found": 1}, "stop_reason": None}
            ),
        ),
    ]
    with L.Ledger(path, KEYER) as led:
        led.append(run1)
        led.append(run2)


@pytest.fixture(name="job")
def _job(write_job: Callable[..., Path], tmp_path: Path) -> job_mod.Job:
    path = write_job()
    build_ledger(tmp_path / "ledger.sqlite")
    return job_mod.load(path)


@pytest.fixture(name="db")
def _db(job: job_mod.Job) -> Iterator[sqlite3.Connection]:
    with closing(L.open_readonly(job.ledger.path)) as db:
        yield db


def _write(db: sqlite3.Connection, job: job_mod.Job, out: Path) -> Path:
    report.write(db, job, out)
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []
    return out


def _by_key(frame: pl.DataFrame) -> dict[tuple[str | None, str], dict[str, object]]:
    return {(r["request_id"], r["key"]): r for r in frame.iter_rows(named=True)}


def test_csv_has_the_contract_columns_and_is_spreadsheet_safe(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    """One row per (request id, key); formula-like text gets a leading apostrophe."""
    out = _write(db, job, tmp_path / "r.csv")
    frame = pl.read_csv(out, infer_schema=False)
    assert frame.columns == COLUMNS
    assert frame.height == 8
    rows = _by_key(frame)
    assert rows[("T2", C)]["error_text"] == "'" + EVIL
    assert rows[("T5", F)]["error_text"] == "'-busy"
    assert rows[("T5", G)]["profile_id"] == "'+7001"
    assert ("'@T4", E) in rows
    assert {k: rows[("T1", A)][k] for k in ("outcome", "profile_id", "error_code")} == {
        "outcome": "erased",
        "profile_id": "101",
        "error_code": "0",
    }
    assert (rows[("T5", G)]["outcome"], rows[("T5", G)]["attempts"]) == ("erased", "1")
    assert (rows[("T3", D)]["outcome"], rows[("T3", D)]["in_doubt"]) == ("not_found", "true")
    assert (rows[("T5", F)]["outcome"], rows[("T5", F)]["attempts"]) == ("failed", "2")
    assert (rows[("T2", C)]["overdue"], rows[("T1", A)]["overdue"]) == ("true", "false")
    assert (rows[("'@T4", E)]["outcome"], rows[("'@T4", E)]["overdue"]) == ("pending", "true")
    # the end of the due day, an instant with its offset (the job's timezone: UTC)
    expected = (datetime.fromisoformat(OLD) + timedelta(days=30)).date().isoformat()
    assert expected + "T23:59:59+00:00" == rows[("T2", C)]["deadline"]


def test_parquet_is_typed_and_exact(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    """Parquet is for programs: real types, values exactly as in the ledger."""
    frame = pl.read_parquet(_write(db, job, tmp_path / "r.parquet"))
    assert frame.columns == COLUMNS
    assert (pl.Boolean, pl.String, pl.Boolean) == (
        frame.schema["in_doubt"],
        frame.schema["deadline"],
        frame.schema["overdue"],
    )
    assert pl.Datetime("us", "UTC") == frame.schema["finished_at"]
    rows = _by_key(frame)
    assert rows[("T2", C)]["error_text"] == EVIL
    assert (rows[("T2", C)]["error_code"], rows[("T2", C)]["http_status"]) == (400, 400)
    assert ("@T4", E) in rows
    assert rows[("@T4", E)]["finished_at"] is None
    assert frame.filter(pl.col("key") == A).height == 2  # T1 and T6 both keep it


def test_xlsx_has_summary_identifiers_requests_and_runs(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    out = _write(db, job, tmp_path / "r.xlsx")
    sheets = pl.read_excel(out, sheet_id=0)
    assert list(sheets) == ["Summary", "Identifiers", "Requests", "Reappeared", "Runs"]
    ids = sheets["Identifiers"]
    assert ids.columns == COLUMNS
    assert ids.height == 8
    rows = _by_key(ids)
    assert rows[("T2", C)]["error_text"] == "'" + EVIL
    assert rows[("T5", G)]["profile_id"] == "'+7001"
    deadline = (datetime.fromisoformat(OLD) + timedelta(days=30)).date().isoformat()
    assert (True, deadline + "T23:59:59+00:00") == (
        rows[("T2", C)]["overdue"],
        rows[("T2", C)]["deadline"],
    )
    summary = dict(sheets["Summary"].cast(pl.String).iter_rows())
    counts = status(db).as_json()
    for name in (
        "total",
        "erased",
        "not_found",
        "rejected",
        "failed",
        "pending",
        "in_doubt",
        "overdue",
    ):
        assert str(counts[name]) == summary[name], name
    assert str(counts["chain_head"]["link"]) == summary["chain_head_link"]
    acc = counts["accounting"]
    assert (str(acc["complete"]), str(acc["incomplete"]), str(counts["invalid"])) == (
        summary["requests complete"],
        summary["requests incomplete"],
        summary["invalid records unresolved"],
    )
    assert acc["complete"] + acc["incomplete"] == acc["requests"]
    for reason, n in acc["incomplete_reasons"].items():
        assert str(n) == summary[f"incomplete: {reason}"]
    runs = sheets["Runs"]
    assert runs["run"].to_list() == [1, 2]
    assert runs["exit_code"].to_list() == [None, 1]
    assert runs["input_sha256"][0] == "ab" * 32
    requests = sheets["Requests"]
    assert "'@T4" in requests["request_id"].to_list()


def test_requests_roll_up(db: sqlite3.Connection) -> None:
    """A request is complete when all its identifiers are erased or not found; else why not."""
    now = datetime.now(UTC)
    rolled = report.requests(report.table(db, now=now), now=now)
    got = {r["request_id"]: r for r in rolled.iter_rows(named=True)}
    assert rolled["request_id"].to_list() == ["T1", "T2", "T3", "@T4", "T5", "T6"]
    assert {k: v["why"] for k, v in got.items()} == {
        "T1": "complete",
        "T2": "rejected",
        "T3": "complete",
        "@T4": "open",
        "T5": "open",
        "T6": "complete",
    }
    assert (got["T1"]["identifiers"], got["T1"]["erased"], got["T1"]["not_found"]) == (2, 1, 1)
    assert (got["T5"]["erased"], got["T5"]["failed"], got["T5"]["pending"]) == (1, 1, 0)
    assert (got["@T4"]["open_past_deadline"], got["T1"]["open_past_deadline"]) == (True, False)
    assert (got["T2"]["finished_late"], got["T1"]["finished_late"]) == (True, False)
    assert got["T3"]["in_doubt"] == 1


def test_xlsx_continues_on_further_sheets(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a sheet's rows, the table goes on in "Identifiers (2)", ... with a header each."""
    monkeypatch.setattr(report.xlsx, "SHEET_ROWS", 4)  # header + 3 rows per sheet
    sheets = pl.read_excel(_write(db, job, tmp_path / "r.xlsx"), sheet_id=0)
    parts = ["Identifiers", "Identifiers (2)", "Identifiers (3)"]
    assert [sheets[name].height for name in parts] == [3, 3, 2]
    assert "Identifiers (4)" not in sheets
    whole = pl.concat([sheets[name] for name in parts], how="vertical_relaxed")
    expected = pl.read_csv(_write(db, job, tmp_path / "r.csv"), infer_schema=False)
    assert expected["key"].to_list() == whole["key"].to_list()
    assert [n for n in sheets if n.startswith("Requests")] == ["Requests", "Requests (2)"]


def test_without_received_at_there_is_no_deadline(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    build_ledger(tmp_path / "ledger.sqlite", received=False)
    job = job_mod.load(write_job())
    with closing(L.open_readonly(job.ledger.path)) as db:
        csv = pl.read_csv(_write(db, job, tmp_path / "r.csv"), infer_schema=False)
        page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
        pl.read_excel(_write(db, job, tmp_path / "r.xlsx"), sheet_id=0)
    assert COLUMNS == csv.columns  # the same columns in every report, empty where unused
    assert csv["deadline"].is_null().all()
    assert 'id="overdue"' not in page


def test_an_empty_ledger_gives_headers_and_zeros(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    with L.Ledger(tmp_path / "ledger.sqlite", KEYER):
        pass
    job = job_mod.load(write_job())
    with closing(L.open_readonly(job.ledger.path)) as db:
        for suffix in (".csv", ".parquet", ".xlsx", ".html"):
            _write(db, job, tmp_path / f"r{suffix}")
    assert COLUMNS == pl.read_csv(tmp_path / "r.csv").columns
    assert pl.read_parquet(tmp_path / "r.parquet").height == 0
    assert pl.read_excel(tmp_path / "r.xlsx", sheet_name="Identifiers").height == 0
    assert {
        k: v
        for k, v in page_counts((tmp_path / "r.html").read_text()).items()
        if k in ("total", "erased")
    } == {"total": 0, "erased": 0}


class _Counts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self._name: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._name = dict(attrs).get("data-count")

    def handle_data(self, data: str) -> None:
        if self._name is not None:
            self.counts[self._name] = int(data.replace(",", ""))
            self._name = None


def page_counts(page: str) -> dict[str, int]:
    """The numbers on the page, by their ``data-count`` name, read from the text shown."""
    parser = _Counts()
    parser.feed(page)
    return parser.counts


STATUS_NAMES = (
    "total",
    "erased",
    "not_found",
    "rejected",
    "failed",
    "pending",
    "in_doubt",
    "overdue",
    "requests",
)


def test_html_numbers_equal_status_and_the_page_is_self_contained(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
    counts = status(db).as_json()
    shown = page_counts(page)
    assert {n: counts[n] for n in STATUS_NAMES} == {n: shown[n] for n in STATUS_NAMES}
    assert shown == {
        "total": 8,
        "erased": 3,
        "not_found": 2,
        "rejected": 1,
        "failed": 1,
        "pending": 1,
        "in_doubt": 1,
        "overdue": 2,
        "requests": 6,
        "invalid": 0,
        # the headline counts requests: complete, incomplete and why, and the deadline's two kinds
        "complete": 3,
        "incomplete": 3,
        "reason_no_identifier": 0,
        "reason_held": 0,
        "reason_cancelled": 0,
        "reason_rejected": 1,
        "reason_invalid": 0,
        "reason_open": 2,
        "open_past_deadline": 1,
        "finished_late": 1,
        "deadline_unknown": 0,
        "unresolved": 0,
    }
    assert "3 of 6 requests are incomplete" in page
    assert 'id="all"' in page and page.count("<tr>") > 8  # every row, by request
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|src=", page, re.I)
    assert "<b>click</b>" not in page and "&lt;b&gt;click&lt;/b&gt;" in page
    assert page.index('id="overdue"') < page.index('id="rejected"') < page.index('id="in-doubt"')
    assert "erased the profile" in page  # the in-doubt explanation
    assert f"erasure verify {job.path}" in page
    assert counts["chain_head"]["link"] in page
    assert LEDGER_KEY not in page and "sandbox-token" not in page
    assert "<svg" in page


def test_html_caps_long_tables(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_html, "MAX_ROWS", 1)
    page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Showing the first 1 of 2." in page  # the two overdue identifiers


def test_an_unsupported_suffix_is_64_and_an_unwritable_report_is_74(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"\.csv, \.parquet, \.xlsx, \.html"):
        report.write(db, job, tmp_path / "r.pdf")
    with pytest.raises(UsageError, match="does not exist"):  # the contract: 64
        report.write(db, job, tmp_path / "missing" / "r.csv")
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(OutputError, match="cannot write the report"):
        report.write(db, job, tmp_path / "taken.csv")
    assert not (tmp_path / "r.pdf").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_report(job: job_mod.Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "R.XLSX"
    assert cli.main(["report", str(job.path), "--out", str(out)]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    assert pl.read_excel(out, sheet_name="Identifiers").height == 8
    assert cli.main(["report", str(job.path), "--out", str(tmp_path / "r.txt")]) == 64
    assert "one of .csv, .parquet, .xlsx, .html" in capsys.readouterr().err
    assert cli.main(["report", str(job.path), "--out", str(tmp_path / "no" / "r.csv")]) == 64
    assert "does not exist" in capsys.readouterr().err


def test_without_request_ids_the_page_speaks_of_identifiers(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """No request id column: one roll-up row with an empty id, a verdict by identifier."""
    with L.Ledger(tmp_path / "ledger.sqlite", KEYER) as led:
        led.append(
            [
                _started(1),
                _planned(1, None, A, None),
                _planned(1, None, B, None),
                _ev(L.Kind.SENT, 1, key=A, attempt=1),
                _outcome(1, None, A, "erased"),
            ]
        )
    job = job_mod.load(write_job())
    with closing(L.open_readonly(job.ledger.path)) as db:
        rolled = report.requests(report.table(db))
        page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
    assert rolled.select("request_id", "identifiers", "erased", "pending").rows() == [
        (None, 2, 1, 1)
    ]
    assert "1 of 1 requests are incomplete: 1 still open (pending or failed)." in page
    assert page_counts(page)["requests"] == 1  # the rows without a request id share one


def test_xlsx_moments_are_dates_and_settings_are_words(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    """Excel gets real dates and times (it can sort and filter them), and settings in words."""
    out = _write(db, job, tmp_path / "r.xlsx")
    ids = pl.read_excel(out, sheet_name="Identifiers")
    assert ids.schema["first_attempt_at"] == pl.Datetime("ms")
    assert ids.schema["finished_at"] == pl.Datetime("ms")
    assert ids.schema["deadline"] == pl.String  # an instant with its offset, as text
    row = _by_key(ids)[("T2", C)]
    ledger_at = report.table(db).filter(pl.col("key") == C)["finished_at"].item()
    in_utc = datetime.fromisoformat(ledger_at).astimezone(UTC).replace(tzinfo=None)
    assert abs(row["finished_at"] - in_utc) < timedelta(milliseconds=1)  # Excel keeps ms
    runs = pl.read_excel(out, sheet_name="Runs")
    assert runs.schema["started_at"] == pl.Datetime("ms")
    summary = dict(pl.read_excel(out, sheet_name="Summary").cast(pl.String).iter_rows())
    assert summary["setting: Preflight check"].startswith("yes: one delete")
    assert summary["setting: Request id column"] == "none (identifiers are not tied to requests)"
    assert summary["setting: Database"] == "database 1"
    assert summary["setting: Error codes"].startswith("not found (nothing to erase): error 404;")
    said = " ".join(v for k, v in summary.items() if k.startswith("setting: "))
    for python in ("True", "False", "None", "[", "{"):
        assert python not in said, python


def test_html_settings_are_words(db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path) -> None:
    page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
    settings = page[page.index('id="settings"') : page.index('id="integrity"')]
    assert "at most 8 per identifier per run" in settings
    assert "errors 401, 403" in settings
    for python in ("True", "False", "None", "[4", "{'"):
        assert python not in settings, python


def test_html_past_its_row_limit_writes_every_row_to_csv(
    db: sqlite3.Connection, job: job_mod.Job, tmp_path: Path
) -> None:
    """The contract's 100,000, made small: the page shows the first rows and names the CSV."""
    out = tmp_path / "big.html"
    report.write(db, job, out, html_rows_max=3)
    page = out.read_text(encoding="utf-8")
    spill = tmp_path / "big.rows.csv"
    top = page[: page.index('id="summary"')]
    assert f"the first 3 of 8 rows; every row is in <code>{spill}</code>" in top
    every = page[page.index('id="all"') : page.index('id="runs"')]
    assert every.count("<tr>") == 1 + 3
    frame = pl.read_csv(spill, infer_schema=False)
    assert frame.columns == COLUMNS and frame.height == 8
    assert frame["key"].to_list() == report.table(db)["key"].to_list()
    assert (spill.stat().st_mode & 0o777) == (out.stat().st_mode & 0o777) == 0o600
    report.write(db, job, tmp_path / "small.html", html_rows_max=8)  # at the limit: no spill
    assert not (tmp_path / "small.csv").exists()


def test_an_empty_received_at_is_no_deadline_not_an_error(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """A request without a received-at has no deadline: said in words, never overdue."""
    with L.Ledger(tmp_path / "ledger.sqlite", KEYER) as led:
        led.append(
            [
                _started(1),
                _planned(1, "T1", A, OLD),
                _planned(1, "T2", B, None),
                _ev(L.Kind.SENT, 1, key=A, attempt=1),
                _outcome(1, "T1", A, "erased"),
            ]
        )
    job = job_mod.load(write_job())
    with closing(L.open_readonly(job.ledger.path)) as db:
        page = _write(db, job, tmp_path / "r.html").read_text(encoding="utf-8")
        xlsx = _write(db, job, tmp_path / "r.xlsx")
        rows = _by_key(report.table(db))
        info = status(db).as_json()
    assert rows[("T2", B)]["deadline"] is None and rows[("T2", B)]["overdue"] is None
    assert info["overdue"] == 1 and info["invalid"] == 0  # T1 finished late; T2 is no error
    every = page[page.index('id="all"') : page.index('id="runs"')]
    assert every.count("no deadline") == 1
    sheet = pl.read_excel(xlsx, sheet_name="Identifiers", schema_overrides={"deadline": pl.String})
    assert _by_key(sheet)[("T2", B)]["deadline"] == "no deadline"
