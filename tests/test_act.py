"""erasure act: the destruction act (.docx, .html) and the extract (.xlsx, .csv) of a real run.

A real sandbox run (and a sweep after a restore) writes the ledger; the
files are read back with python-docx and polars, and searched for every
field of [act], one row per destroyed profile, and no raw identifier.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox

ACT = {
    "operator": "ООО «Ромашка», ИНН 7700000000, 101000, Москва, ул. Ленина, 1",
    "processor": "ООО «Альткрафт», 123100, Москва, Пресненская наб., 12, по поручению оператора",
    "system": "Altcraft Platform, аккаунт example",
    "categories": ["фамилия, имя", "адрес электронной почты", "история действий"],
    "commission": ["Иванов И. И., DPO", "Петров П. П., CISO"],
}
SWEEP = {"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email", "phone": "phone"}}
ERASED = range(6)  # user0..user5 exist in the sandbox
MISSING = ["T900,nobody900@example.com", "T901,nobody901@example.com"]


def _identifiers() -> list[str]:
    return [f"user{i}@example.com" for i in ERASED] + ["nobody900@example.com", "nobody901"]


@pytest.fixture(name="job")
def _job(write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path) -> Path:
    """One run: six erased, two with nothing to destroy; then a sweep re-deletes two."""
    e2e.emails_csv(tmp_path / "in.csv", ERASED, extra=MISSING)
    job = e2e.job(write_job, sandbox.url, act=ACT, sweep=SWEEP)
    assert 0 == e2e.run(job)
    sandbox.restore(last=2)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    assert 1 == cli.main(["sweep", str(job), "--export", str(export), "--log-format", "json"])
    return job


def _act(job: Path, out: Path, *scope: str) -> int:
    return cli.main(["act", str(job), "--out", str(out), *scope])


def _no_identifier_in(text: str) -> None:
    for raw in _identifiers():
        assert raw not in text
    assert "@example.com" not in text


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_the_docx_act_holds_every_field_and_signature_lines(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from docx import Document

    out = tmp_path / "act.docx"
    capsys.readouterr()
    assert 0 == _act(job, out, "--run", "1")
    said = capsys.readouterr().out
    assert "destroyed: 6 profiles of 6 requests" in said and "nothing found to destroy: 2" in said
    doc = Document(str(out))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    text = "\n".join([*(p.text for p in doc.paragraphs), *cells])
    assert "АКТ об уничтожении персональных данных" in text
    for value in (ACT["operator"], ACT["processor"], ACT["system"], *ACT["categories"]):
        assert value in text
    for member in ACT["commission"]:
        [line] = [p.text for p in doc.paragraphs if p.text.startswith(member)]
        assert "____" in line and "подпись" in line
    for i in ERASED:
        assert f"T{i}" in text
    assert "удаление профилей через API Altcraft" in text
    assert "152-ФЗ" in text  # the reason's article
    assert "Уничтожать было нечего" in text and "T900" in text and "T901" in text
    head = next(line for line in said.splitlines() if line.startswith("ledger chain head: "))
    assert head.removeprefix("ledger chain head: ") in text
    assert "не является юридической консультацией" in text
    _no_identifier_in(text)
    assert (out.stat().st_mode & 0o777) == 0o600


def test_the_xlsx_extract_has_a_row_per_destroyed_profile_sweeps_included(
    job: Path, tmp_path: Path
) -> None:
    out = tmp_path / "extract.xlsx"
    assert 0 == _act(job, out, "--from", _today(), "--to", _today())
    sheets = pl.read_excel(out, sheet_id=0, infer_schema_length=0)
    assert list(sheets) == ["Уничтожено", "Уничтожать было нечего"]
    sheet, missing = sheets["Уничтожено"], sheets["Уничтожать было нечего"]
    kinds = sheet.columns[-1]
    # six erased by the run, two again by the sweep after the restore
    assert sheet.height == 8
    assert sheet.filter(pl.col(kinds).str.contains("повторно")).height == 2
    assert set(sheet[sheet.columns[0]]) == {f"T{i}" for i in ERASED}
    assert set(sheet[kinds]) == {"уничтожено", "уничтожено повторно (после восстановления)"}
    assert sorted(missing[sheet.columns[0]].to_list()) == ["T900", "T901"]
    assert set(missing[kinds]) == {"уничтожать было нечего"}
    assert set(sheet[sheet.columns[1]]) == {ACT["system"]}
    assert set(sheet[sheet.columns[2]]) == {"; ".join(ACT["categories"])}
    assert all(t.startswith(_today()) for t in sheet[sheet.columns[3]])
    assert sheet[sheet.columns[5]].str.contains(r"^\d+$").all()  # the ledger event
    assert sheet[sheet.columns[5]].n_unique() == sheet.height
    _no_identifier_in(missing.write_csv())
    _no_identifier_in(sheet.write_csv())


def test_the_csv_extract_and_an_english_html_act(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", ERASED)
    job = e2e.job(write_job, sandbox.url, act={**ACT, "language": "en", "article": "GDPR Art. 17"})
    assert 0 == e2e.run(job)
    out = tmp_path / "extract.csv"
    assert 0 == _act(job, out, "--run", "1")
    rows = pl.read_csv(out, infer_schema=False)
    assert rows.columns[0].startswith("Request id") and rows.height == len(ERASED)
    assert set(rows["Reason for destruction"]) == {
        "the data subject's request to destroy their personal data (GDPR Art. 17)"
    }
    html = tmp_path / "act.html"
    assert 0 == _act(job, html, "--run", "1")
    page = html.read_text(encoding="utf-8")
    assert "Act of destruction of personal data" in page and 'lang="en"' in page
    assert "deletion through the Altcraft API" in page and "<script" not in page
    _no_identifier_in(page + out.read_text(encoding="utf-8-sig"))


def test_a_missing_act_field_is_78_naming_it(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", ERASED)
    partial = {k: v for k, v in ACT.items() if k != "commission"}
    job = e2e.job(write_job, sandbox.url, act=partial)
    assert 0 == e2e.run(job)  # no other command refuses the job for it
    capsys.readouterr()
    assert 78 == _act(job, tmp_path / "a.docx", "--run", "1")
    err = capsys.readouterr().err
    assert "act.commission is required" in err and err.count("\n") == 1
    assert not (tmp_path / "a.docx").exists()


def test_bad_ranges_are_64_and_an_unwritable_act_is_74(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ("--run", "99"),
        ("--from", "2026-02-01", "--to", "2026-01-01"),
        ("--from", "yesterday", "--to", "2026-01-01"),
        ("--from", "2026-01-01"),
        ("--run", "1", "--from", "2026-01-01", "--to", "2026-01-02"),
        ("--from", "2020-01-01", "--to", "2020-01-02"),  # nothing destroyed then
    ]
    for scope in cases:
        capsys.readouterr()
        assert 64 == _act(job, tmp_path / "a.docx", *scope), scope
        assert capsys.readouterr().err.count("\n") == 1
    assert 64 == _act(job, tmp_path / "a.pdf", "--run", "1")
    assert 64 == _act(job, tmp_path / "nowhere" / "a.docx", "--run", "1")
    source = tmp_path / "in.csv"  # the job's input: an extract never overwrites it
    before = source.read_bytes()
    capsys.readouterr()
    assert 64 == _act(job, source, "--run", "1")
    assert "never overwrites" in capsys.readouterr().err
    assert source.read_bytes() == before
    folder = tmp_path / "taken.docx"  # a folder where the act should go: cannot be written
    folder.mkdir()
    capsys.readouterr()
    assert 74 == _act(job, folder, "--run", "1")
    assert "cannot write the act" in capsys.readouterr().err


BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def test_the_html_act_renders_in_chromium(job: Path, tmp_path: Path) -> None:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        if os.environ.get("ERASURE_CI") == "1":
            pytest.fail("no headless Chromium; ERASURE_CI=1 demands it (.ci/run installs it)")
        pytest.skip("no headless Chromium found; `apt-get install chromium` runs this test")
    out = tmp_path / "act.html"
    assert 0 == _act(job, out, "--run", "1")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-dev-shm-usage"]

    def run(profile: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [browser, *flags, f"--user-data-dir={tmp_path / profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    dumped = run("dom", "--dump-dom", out.as_uri())
    assert dumped.returncode == 0, dumped.stderr
    dom = dumped.stdout
    for value in (ACT["operator"], ACT["system"], *ACT["categories"], "T0", "T5", "T900"):
        assert value in dom
    assert dom.count('class="sign"') == len(ACT["commission"])
    _no_identifier_in(dom)
    shot = _artefacts() / "act.png"
    taken = run("shot", f"--screenshot={shot}", "--window-size=1000,1400", out.as_uri())
    assert taken.returncode == 0, taken.stderr
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000


def _artefacts() -> Path:
    """Where a person finds what the tests rendered (kept after the run): ERASURE_ARTEFACTS,
    else test-artefacts/ in the repository (ignored by git)."""
    folder = Path(
        os.environ.get("ERASURE_ARTEFACTS")
        or Path(__file__).resolve().parent.parent / "test-artefacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
