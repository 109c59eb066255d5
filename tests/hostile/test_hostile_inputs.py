"""Hostile input files and receipts end in 65 with one line, never 70 and never a hang.

Findings: deeply nested NDJSON input or receipts, and a 5,000-digit integer in a receipt,
exited 70; a FIFO or /dev/zero as input hung; an XLSX with a blank middle row gave 70
(`ShapeError`) in `screen`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter

from erasure import cli
from tests.hostile.conftest import Finished

ROOT = Path(__file__).resolve().parents[2]


def _erasure(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess, bounded in time: a hang is a failure, not a stuck suite."""
    return subprocess.run(
        [sys.executable, "-m", "erasure", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("nesting", ["array", "object"])
def test_deeply_nested_ndjson_input_is_65(
    write_job: Callable[..., Path],
    tmp_path: Path,
    nesting: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opened, closed = ("[", "]") if nesting == "array" else ('{"a":', "}")
    deep = opened * 100_000 + "1" + closed * 100_000
    (tmp_path / "in.ndjson").write_text(
        '{"email": "user1@example.com"}\n' + f'{{"email": "user2@example.com", "x": {deep}}}\n'
    )
    job = write_job(input={"path": "in.ndjson"})
    capsys.readouterr()
    assert 65 == cli.main(["validate", str(job)])
    line = _one_error_line(capsys.readouterr().err)
    assert "nested deeper than" in line


def test_a_huge_integer_in_ndjson_input_is_65(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.ndjson").write_text('{"email": "user1@example.com", "n": ' + "9" * 5000 + "}\n")
    job = write_job(input={"path": "in.ndjson"})
    capsys.readouterr()
    assert 65 == cli.main(["validate", str(job)])
    assert "a number longer than" in _one_error_line(capsys.readouterr().err)


def _receipt(finished: Finished, request_id: str = "T1") -> dict[str, object]:
    out = finished.folder / f"{request_id}.json"
    assert 0 == cli.main(
        ["receipt", str(finished.job), "--request-id", request_id, "--out", str(out)]
    )
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "poison",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        "9" * 5000,
        "-" + "1" * 5000 + "e5",
    ],
    ids=["deep-array", "deep-object", "5000-digits", "long-float"],
)
@pytest.mark.parametrize("where", ["envelope", "document"])
def test_a_receipt_nested_too_deep_or_with_a_huge_number_is_65(
    finished: Finished, poison: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = _receipt(finished)
    text = json.dumps(receipt)
    if where == "envelope":
        text = text[:-1] + ', "x": ' + poison + "}"
    else:
        text = text.replace('"receipt": {', '"receipt": {"x": ' + poison + ", ", 1)
    hostile = finished.folder / "hostile.json"
    hostile.write_text(text)
    capsys.readouterr()
    code = cli.main(["check-receipt", str(hostile), "--public-key", str(finished.key) + ".pub"])
    assert code == 65
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("suffix", [".csv", ".json"])  # .json: the OpenDSR reader
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_fifo_or_a_device_as_input_is_65_without_hanging(
    write_job: Callable[..., Path], tmp_path: Path, kind: str, suffix: str
) -> None:
    source = tmp_path / f"in{suffix}"
    if kind == "fifo":
        os.mkfifo(source)
    else:
        source.symlink_to("/dev/zero")
    job = write_job(input={"path": source.name})
    result = _erasure("validate", str(job), timeout=30)
    assert result.returncode == 65, result.stderr
    assert "not a regular file" in _one_error_line(result.stderr)


def test_a_fifo_as_a_receipt_is_65_without_hanging(finished: Finished, tmp_path: Path) -> None:
    pipe = tmp_path / "r.json"
    os.mkfifo(pipe)
    result = _erasure(
        "check-receipt", str(pipe), "--public-key", str(finished.key) + ".pub", timeout=30
    )
    assert result.returncode == 65, result.stderr
    assert "not a regular file" in _one_error_line(result.stderr)


def test_screen_copes_with_an_xlsx_with_a_blank_middle_row(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    source = finished.folder / "import.xlsx"
    book = xlsxwriter.Workbook(str(source))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["email", "source"])
    sheet.write_row(1, 0, ["user1@example.com", "crm"])  # erased by the finished run
    sheet.write_row(3, 0, ["someone@example.org", "crm"])  # row 3 is blank
    book.close()
    out = finished.folder / "clean.xlsx"
    capsys.readouterr()
    assert 0 == cli.main(["screen", str(finished.job), "--input", str(source), "--out", str(out)])
    import polars as pl

    kept = pl.read_excel(out, engine="calamine")
    assert kept.get_column("email").drop_nulls().to_list() == ["someone@example.org"]


def test_a_fifo_as_the_job_file_is_78_without_hanging(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    os.mkfifo(job)
    result = _erasure("validate", str(job), timeout=30)
    assert result.returncode == 78, result.stderr
    assert "not a regular file" in _one_error_line(result.stderr)
