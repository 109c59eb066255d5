"""The header is found below title and group rows; ``[input] header_row`` pins it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter

from erasure import cli
from erasure import job as job_mod
from erasure.intake import read_table
from erasure.intake.header import HeaderRule, csv_header_line
from erasure.intake.layout import header_rule
from tests.conftest import LEDGER_KEY

RUSSIAN = {"email": "Электронная почта", "phone": "Телефон"}


def _validate(job: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["validate", str(job)])
    out, err = capsys.readouterr()
    return code, out, err


def _job(write_job: Callable[..., Path], path: Path, **input: object) -> Path:
    return write_job(
        input={"path": str(path), "request_id_column": "Тикет", "columns": RUSSIAN, **input}
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)


def test_a_title_row_with_commas_above_a_semicolon_header(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The delimiter comes from the header line, not the title; rows keep their numbers."""
    path = tmp_path / "helpdesk.csv"
    path.write_text(
        "Выгрузка обращений, ноябрь 2026, отдел качества\n"
        "\n"
        "Тикет;Электронная почта;Телефон\n"
        "T-1;a@example.com;+79161234567\n"
        "T-2;not-an-address;\n",
        encoding="utf-8",
    )
    code, out, _ = _validate(_job(write_job, path), capsys)
    assert 1 == code
    assert f"input: {path} (header on row 3)" in out
    assert "valid 2 " in out
    assert "invalid: row 5 request T-2: email_invalid" in out


def test_a_header_on_the_first_row_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("email,phone\na@example.com,\n", encoding="utf-8")
    rule = HeaderRule(frozenset(), frozenset({"email", "phone", "profile_id"}))
    table = read_table(path, rule.wanted, rule)
    assert (1, 2, ["email", "phone"]) == (table.header_row, table.first_row, table.names)


def test_header_row_pins_the_header(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pinned on a row that does not name the columns: the mapping says what is missing (65)."""
    path = tmp_path / "pinned.csv"
    path.write_text(
        "Тикет,Электронная почта,Телефон\n"
        "Title,,\n"
        "Тикет,Электронная почта,Телефон\n"
        "T-9,b@example.com,\n",
        encoding="utf-8",
    )
    code, out, _ = _validate(_job(write_job, path, header_row=3), capsys)
    assert (0, True) == (code, "(header on row 3)" in out)
    code, _, err = _validate(_job(write_job, path, header_row=2), capsys)
    assert 65 == code
    assert "has no column 'Электронная почта' (named by input.columns.email)" in err


def test_no_header_among_the_first_rows_is_65_naming_the_column(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "none.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = _validate(_job(write_job, path), capsys)
    assert 65 == code
    assert "has no column 'Электронная почта'" in err


def test_the_search_looks_at_twenty_rows_only() -> None:
    rule = HeaderRule(frozenset({"email"}))
    assert 19 == csv_header_line("x\n" * 19 + "email\n", rule, [","])
    assert 0 == csv_header_line("x\n" * 20 + "email\n", rule, [","])


def test_defaults_need_one_identifier_column_and_every_named_one(
    write_job: Callable[..., Path],
) -> None:
    job = job_mod.load(write_job(input={"request_id_column": "Ticket"}))
    rule = header_rule(job.input)
    assert not rule.named_by(["Email", "Phone"])  # no Ticket
    assert not rule.named_by(["Ticket", "Name"])  # no identifier column
    assert rule.named_by([" ticket ", "PHONE"])


def test_an_xlsx_with_a_title_and_a_group_row(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CRM's two-row header: the group row above the field names is skipped."""
    path = tmp_path / "crm.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write(0, 0, "Выгрузка из CRM")
    sheet.write(2, 0, "Обращение")
    sheet.write(2, 1, "Контакт")
    for col, name in enumerate(["Тикет", "Электронная почта", "Телефон"]):
        sheet.write(3, col, name)
    sheet.write_row(4, 0, ["T-1", "a@example.com", "+79161234567"])
    sheet.write_row(5, 0, ["T-2", "bad", None])
    book.close()
    code, out, _ = _validate(_job(write_job, path), capsys)
    assert 1 == code
    assert "(header on row 4)" in out
    assert "invalid: row 6 request T-2: email_invalid" in out
