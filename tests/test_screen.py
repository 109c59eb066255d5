"""erasure screen: an import file less the erased people, kept rows byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from erasure import cli
from erasure.after.screen import csv_records
from tests import e2e
from tests.sandbox_fixture import Sandbox


@pytest.fixture(name="job")
def _job(write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path) -> Path:
    """A ledger where user0..user4 were erased and user99 was not found."""
    e2e.emails_csv(tmp_path / "in.csv", [0, 1, 2, 3, 4, 1000])
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    return job


def _screen(job: Path, source: Path, out: Path) -> int:
    return cli.main(["screen", str(job), "--input", str(source), "--out", str(out)])


def test_kept_rows_are_copied_byte_for_byte(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "import.csv"
    lines = [
        b"Name;Email;Note\r\n",
        b'"Ann";USER1@Example.com ;"first"\r\n',  # erased: screened
        b'"Bob";user7@example.com;"multi\r\nline; note"\r\n',
        b"Cy;;0012\r\n",
        b"Dee;user1000@example.com;gone\r\n",  # not_found: finished, screened
        b"Eve;  user8@example.com;=1+1\r\n",
    ]
    source.write_bytes(b"".join(lines))
    out = tmp_path / "clean.csv"
    capsys.readouterr()
    assert 0 == _screen(job, source, out)
    assert out.read_bytes() == lines[0] + lines[2] + lines[3] + lines[5]
    said = capsys.readouterr().out
    assert "kept: 3" in said and "screened: 2" in said and "unchecked: 0" in said
    assert "user1" not in said.lower()


def test_a_cell_that_cannot_be_normalised_keeps_its_row_and_is_1(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "import.csv"
    source.write_text("email\nnot an address\nuser2@example.com\n")
    out = tmp_path / "clean.csv"
    capsys.readouterr()
    assert 1 == _screen(job, source, out)
    assert out.read_text() == "email\nnot an address\n"
    assert "unchecked: 1" in capsys.readouterr().out


def test_other_formats_keep_their_format(job: Path, tmp_path: Path) -> None:
    rows = [{"email": "user3@example.com", "n": 1}, {"email": "user9@example.com", "n": 2}]
    ndjson = tmp_path / "import.ndjson"
    ndjson.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert 0 == _screen(job, ndjson, tmp_path / "clean.ndjson")
    assert (tmp_path / "clean.ndjson").read_text() == json.dumps(rows[1]) + "\n"
    parquet = tmp_path / "import.parquet"
    pl.DataFrame(rows).write_parquet(parquet)
    assert 0 == _screen(job, parquet, tmp_path / "clean.parquet")
    assert pl.read_parquet(tmp_path / "clean.parquet").to_dicts() == [rows[1]]


def test_screen_refusals(job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "import.csv"
    source.write_text("email\nuser9@example.com\n")
    assert 64 == _screen(job, source, tmp_path / "clean.xlsx")
    assert 66 == _screen(job, tmp_path / "none.csv", tmp_path / "clean.csv")
    assert 64 == _screen(job, source, tmp_path / "no" / "dir" / "clean.csv")
    (tmp_path / "bad.csv").write_text("name\nann\n")
    assert 65 == _screen(job, tmp_path / "bad.csv", tmp_path / "clean2.csv")
    assert "Traceback" not in capsys.readouterr().err


def test_csv_records_split_on_line_ends_outside_quotes() -> None:
    data = b'a,b\n"x\ny",1\n"say ""hi""",2\nlast,3'
    assert csv_records(data) == [b"a,b\n", b'"x\ny",1\n', b'"say ""hi""",2\n', b"last,3"]


def test_a_column_the_job_names_and_the_import_lacks_is_65(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """[screen] columns are all needed: a file without one is never copied as clean."""
    (tmp_path / "in.csv").write_text("ticket,email,phone\nT5,user5@example.com,\n")
    job = e2e.job(write_job, sandbox.url, screen={"columns": {"email": "email", "phone": "phone"}})
    assert 0 == e2e.run(job)
    source = tmp_path / "import.csv"
    source.write_text("email,source\nuser5@example.com,crm\nuser6@example.com,crm\n")
    capsys.readouterr()
    assert 65 == _screen(job, source, tmp_path / "clean.csv")
    err = capsys.readouterr().err
    assert "names 'email' and 'phone', the columns screen looked for" in err
    assert not (tmp_path / "clean.csv").exists()


def test_a_plain_import_needs_no_screen_section(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """email,phone in any case, under a title row; the repairs of the intake apply."""
    source = tmp_path / "import.csv"
    source.write_text(
        "CRM import, 2026-12-04\n"
        "EMAIL,Phone,name\n"
        "mailto:user1@example.com,,a\n"
        '"User Two <user2@example.com>",,b\n'
        '"user9@example.com, user3@example.com",,c\n'
        "user9@example.com,,d\n"
        "not an address,,e\n"
        ",12,f\n"
    )
    out = tmp_path / "clean.csv"
    capsys.readouterr()
    assert 1 == _screen(job, source, out)
    assert out.read_text() == (
        "CRM import, 2026-12-04\nEMAIL,Phone,name\nuser9@example.com,,d\nnot an address,,e\n,12,f\n"
    )
    said = capsys.readouterr().out
    assert "kept: 3" in said and "screened: 3" in said
    assert "unchecked: 2 (kept: cells that could not be read as an identifier, rows 7, 8)" in said


def test_columns_from_the_command_line_or_the_job(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", [4])
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    source = tmp_path / "import.csv"
    source.write_text("E-mail,Имя\nuser4@example.com,a\nuser8@example.com,b\n")
    capsys.readouterr()
    assert 65 == _screen(job, source, tmp_path / "none.csv")
    err = capsys.readouterr().err
    assert "names email, phone or profile_id (any case), the columns screen looked for" in err
    args = ["screen", str(job), "--input", str(source), "--out", str(tmp_path / "a.csv")]
    assert 0 == cli.main([*args, "--column", "email=E-mail"])
    assert (tmp_path / "a.csv").read_text() == "E-mail,Имя\nuser8@example.com,b\n"
    assert 64 == cli.main([*args, "--column", "mail=E-mail"])
    assert 64 == cli.main([*args, "--column", "email"])
    configured = e2e.job(write_job, sandbox.url, screen={"columns": {"email": "E-mail"}})
    assert 0 == _screen(configured, source, tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_text() == "E-mail,Имя\nuser8@example.com,b\n"
