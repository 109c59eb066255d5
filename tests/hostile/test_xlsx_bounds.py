"""An XLSX is bounded by what it really holds, never by what it declares.

The Excel reader sizes its grid from the cells present: a 2 KB workbook
with one cell at XFD1048576 made it allocate 512 GiB and abort the process
(exit 134). Each workbook here is built part by part, and each command that
reads one runs in a subprocess under a memory ceiling, so that a reader
that tries anyway shows up as a crash, not as a slow test.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from erasure.errors import InputUnusable
from erasure.intake import workbook
from tests import e2e
from tests.sandbox_fixture import Sandbox

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
MEMORY = 1536 * 1024**2  # bytes of address space the command may take


def make_xlsx(
    path: Path,
    cells: list[tuple[str, str]],
    *,
    dimension: str | None = None,
    shared: list[str] | None = None,
    doctype: str = "",
) -> Path:
    """A workbook with inline-string cells (``ref``, value), or shared strings."""
    rows: dict[int, list[str]] = {}
    for ref, value in cells:
        number = int(re.sub(r"[A-Z]", "", ref))
        if shared is not None:
            cell = f'<c r="{ref}" t="s"><v>{value}</v></c>'
        else:
            cell = f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
        rows.setdefault(number, []).append(cell)
    body = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(rows.items()))
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (
        f'<?xml version="1.0"?>{doctype}<worksheet xmlns="{NS}">{dim}'
        f"<sheetData>{body}</sheetData></worksheet>"
    )
    types = (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/>'
        + (
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            if shared is not None
            else ""
        )
        + "</Types>"
    )
    strings_rel = (
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        if shared is not None
        else ""
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/worksheet" '
            f'Target="worksheets/sheet1.xml"/>{strings_rel}</Relationships>',
        )
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        if shared is not None:
            items = "".join(f"<si><t>{s}</t></si>" for s in shared)
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}">{items}</sst>')
    return path


HEADER = [("A1", "email"), ("A2", "ivan@example.com")]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def erasure(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess under a memory ceiling and a time bound."""
    return subprocess.run(
        [sys.executable, "-m", "erasure", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
        env=os.environ.copy(),
    )


@pytest.fixture
def job(write_job: Any, tmp_path: Path) -> Path:
    return write_job(  # type: ignore[no-any-return]
        input={"path": "in.xlsx"},
        sweep={"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email"}},
    )


def _with_a_ledger(job: Path, url: str, tmp_path: Path) -> None:
    """One real run on a CSV, so that screen and sweep have a ledger to read."""
    text = job.read_text().replace("http://127.0.0.1:9", url)
    job.write_text(text)
    e2e.emails_csv(tmp_path / "first.csv", [1, 2], tickets=False)
    assert e2e.run(job, "--input", str(tmp_path / "first.csv")) == 0


def _one_line_65(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 65, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["validate", "run", "screen", "sweep"])
def test_a_cell_at_xfd1048576_is_refused_not_allocated(
    command: str, job: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    if command in ("screen", "sweep"):
        _with_a_ledger(job, sandbox.url, tmp_path)
    book = make_xlsx(tmp_path / "in.xlsx", [*HEADER, ("XFD1048576", "x")])
    assert book.stat().st_size < 2048
    args = {
        "validate": ["validate", str(job)],
        "run": ["run", str(job), "--no-progress"],
        "screen": ["screen", str(job), "--input", str(book), "--out", str(tmp_path / "o.xlsx")],
        "sweep": ["sweep", str(job), "--export", str(book), "--dry-run"],
    }[command]
    line = _one_line_65(erasure(*args, cwd=tmp_path))
    assert "in.xlsx" in line and "column" in line
    assert not (tmp_path / "o.xlsx").exists()


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ([*HEADER, ("ZZ200000", "x")], "rows ×"),  # 5 GB in the reader before
        ([*HEADER, ("A1048577", "x")], "beyond row"),
        ([*HEADER, ("XFE2", "x")], "beyond column"),
    ],
)
def test_cells_beyond_the_limits_are_refused(
    cells: list[tuple[str, str]], words: str, tmp_path: Path
) -> None:
    book = make_xlsx(tmp_path / "in.xlsx", cells)
    with pytest.raises(InputUnusable, match=words):
        workbook.check(book, book.name)


def test_one_huge_shared_string_is_refused_while_streaming(tmp_path: Path) -> None:
    # 400 MB of text that packs into about 400 KB: counted as it arrives, never held
    huge = "A" * (400 * 1024**2)
    book = make_xlsx(tmp_path / "in.xlsx", [("A1", "0"), ("A2", "1")], shared=["email", huge])
    assert book.stat().st_size < 1024**2
    del huge
    with pytest.raises(InputUnusable, match="shared string is longer than 32,767"):
        workbook.check(book, book.name)


@pytest.mark.slow
def test_one_huge_shared_string_never_reaches_the_reader(job: Path, tmp_path: Path) -> None:
    huge = "A" * (64 * 1024**2)
    make_xlsx(tmp_path / "in.xlsx", [("A1", "0"), ("A2", "1")], shared=["email", huge])
    _one_line_65(erasure("validate", str(job), cwd=tmp_path))


@pytest.mark.parametrize("dimension", [None, "A1:XFD1048576", "A1", "B2:C3"])
def test_a_missing_or_lying_dimension_changes_nothing(
    dimension: str | None, job: Path, tmp_path: Path
) -> None:
    book = make_xlsx(tmp_path / "in.xlsx", HEADER, dimension=dimension)
    extent = workbook.check(book, book.name)
    assert (extent.first_row, extent.rows, extent.columns, extent.cells) == (1, 2, 1, 2)
    from erasure import cli

    assert cli.main(["validate", str(job)]) == 0


def test_the_header_row_is_found_below_blank_rows(tmp_path: Path) -> None:
    book = make_xlsx(tmp_path / "in.xlsx", [("B3", "email"), ("B4", "ivan@example.com")])
    assert workbook.check(book, book.name).first_row == 3


def test_a_doctype_with_entities_is_refused(tmp_path: Path) -> None:
    laughs = '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    book = make_xlsx(tmp_path / "in.xlsx", HEADER, doctype=laughs)
    with pytest.raises(InputUnusable, match="cannot be read as an XLSX workbook"):
        workbook.check(book, book.name)


def test_an_archive_that_unpacks_past_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_UNPACKED", 1024**2)
    book = make_xlsx(tmp_path / "in.xlsx", HEADER)
    with zipfile.ZipFile(book, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/styles.xml", b" " * (2 * 1024**2))
    with pytest.raises(InputUnusable, match="unpacks to more than 1 MiB"):
        workbook.check(book, book.name)
