"""A corpus of real export shapes, written by code, each with the accounting it must give.

``python -m tests.exports_corpus DIR`` writes the files into DIR to look at;
the tests call :func:`build`. Each :class:`Case` names its file, the
``[input]`` settings a job needs for it, and what ``validate`` must count:
rows, valid identifiers, invalid records by reason, repaired cells by kind,
the header's row; ``split`` is the same with ``split_addresses = true``.

The helpdesk export is the one issue 22 describes: 192 rows under a title
line and a blank line, Russian headers, `;` between cells but commas in the
title, phones in every shape, ``mailto:`` links, trailing dots, cells of two
or three addresses, display names, numbers dialled with ``00``; its truly
unusable cells (garbage, and the cells of several addresses) are the only
invalid ones. Addresses are the sandbox's generated ``user{i}@example.com``,
so the same file can be run end to end.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter


@dataclass(frozen=True)
class Expected:
    rows: int
    valid: int
    invalid: dict[str, int]
    repairs: dict[str, int]
    header_row: int


@dataclass(frozen=True)
class Case:
    file: str
    input: dict[str, object]  # the job's [input] keys, less path and db_id
    expected: Expected
    split: Expected | None = None  # with split_addresses = true
    several: list[list[str]] = field(default_factory=list)  # the addresses of each such cell


def _user(i: int) -> str:
    return f"user{i}@example.com"


def _phone_shapes(i: int) -> str:
    """The sandbox's +7900{i:07d}, written as people write it."""
    digits = f"{i:07d}"
    shapes = [
        f"8 (900) {digits[:3]}-{digits[3:5]}-{digits[5:]}",
        f"+7 900 {digits}",
        f"900{digits}",
        f"+7 (900) {digits[:3]} {digits[3:5]} {digits[5:]}",
    ]
    return shapes[i % len(shapes)]


def _csv_cell(text: str) -> str:
    if any(c in text for c in ';"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


HELPDESK_COLUMNS = {"email": "Электронная почта", "phone": "Телефон"}


def helpdesk(folder: Path) -> Case:
    """The 192-row helpdesk export of issue 22."""
    rows: list[tuple[str, str]] = []  # (email cell, phone cell)
    several: list[list[str]] = []
    n = 0

    def user() -> str:
        nonlocal n
        n += 1
        return _user(n)

    for k in range(154):  # ordinary rows: spacing and case as typed
        address = user()
        email = [address, f" {address.upper()} ", address.capitalize()][k % 3]
        phone = _phone_shapes(n) if k % 3 else ""
        rows.append((email, phone))
    for k in range(8):  # mailto: links
        rows.append((("MAILTO:" if k % 2 else "mailto:") + user(), ""))
    for _ in range(6):  # a trailing dot
        rows.append((user() + ".", ""))
    for k in range(4):  # two addresses, separated four ways
        pair = [user(), user()]
        several.append(pair)
        rows.append(([", ", " ", "; ", "\n"][k].join(pair), ""))
    three = [user(), user(), user()]
    several.append(three)
    rows.append((", ".join(three), ""))
    rows.append((f'"Petrov, Ivan" <{user()}>', ""))  # display names
    rows.append((f"Иван Петров <{user()}>", ""))
    rows.append((f"Support Team <{user()}>", ""))
    rows.append((f"<{user()}>", ""))  # brackets and quotes
    rows.append((f'"{user()}"', ""))
    for number in ("00 49 30 2001365", "0044 20 7946 0958", "00 33 1 42 68 53 00"):
        rows.append((user(), number))  # dialled from abroad
    for number in ("8 10 49 30 2001366", "8 10 44 20 7946 0959"):
        rows.append((user(), number))  # Russia's own prefix: read as it always was
    for garbage in ("нет почты", "ivan.example.com", "ivan@", "@example.com"):
        rows.append((garbage, ""))  # truly unusable
    rows.append((user(), "не указан"))
    rows.append((user(), "12345"))
    for _ in range(3):
        rows.append(("", ""))  # blank rows
    assert len(rows) == 192, len(rows)
    lines = [
        "Выгрузка обращений из Service Desk, 01.11.2026 - 30.11.2026, отдел качества",
        "",
        "№;Тикет;Дата обращения;ФИО;Электронная почта;Телефон;Комментарий",
    ]
    for i, (email, phone) in enumerate(rows, 1):
        if not email and not phone:
            lines.append(";;;;;;")
            continue
        cells = [str(i), f"SD-{1000 + i}", f"{i % 28 + 1:02d}.11.2026 10:{i % 60:02d}"]
        cells += ["Клиент", email, phone, "удалить данные; по 152-ФЗ"]
        lines.append(";".join(_csv_cell(c) for c in cells))
    (folder / "helpdesk-title.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # identifier cells: 154 emails and 102 phones of ordinary rows, 8 + 6 + 5 + 3 + 2
    # repairable or several emails, 3 + 2 rows of an email and a foreign phone, 4 garbage
    # emails, 2 rows of an email and a garbage phone: 298, of which 11 invalid
    expected = Expected(
        rows=192,
        valid=287,
        invalid={"email_invalid": 4, "phone_invalid": 2, "several_addresses": 5},
        repairs={
            "mailto": 8,
            "trailing_dot": 6,
            "display_name": 3,
            "quoted": 2,
            "international_prefix": 3,
        },
        header_row=3,
    )
    return Case(
        "helpdesk-title.csv",
        {"request_id_column": "Тикет", "columns": HELPDESK_COLUMNS},
        expected,
        split=Expected(
            rows=192,
            valid=expected.valid + 11,
            invalid={"email_invalid": 4, "phone_invalid": 2},
            repairs={**expected.repairs, "split": 5},
            header_row=3,
        ),
        several=several,
    )


CRM_COLUMNS = {"email": "E-mail", "phone": "Мобильный телефон"}


def _crm_rows() -> list[list[str]]:
    return [
        [str(500 + i), f"Клиент {i}", _user(300 + i), _phone_shapes(300 + i), f"D-{i}"]
        for i in range(10)
    ]


def crm_csv(folder: Path) -> Case:
    """A CRM export: a row of column groups above the field names (two-row header)."""
    lines = [
        "Контакт,,Контактная информация,,Сделка",
        "ID,Имя,E-mail,Мобильный телефон,Номер сделки",
    ]
    lines += [",".join(row) for row in _crm_rows()]
    (folder / "crm-two-row.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(
        "crm-two-row.csv",
        {"request_id_column": "Номер сделки", "columns": CRM_COLUMNS},
        Expected(rows=10, valid=20, invalid={}, repairs={}, header_row=2),
    )


def crm_xlsx(folder: Path) -> Case:
    """The same CRM export as a workbook, with a title and merged group cells."""
    book = xlsxwriter.Workbook(folder / "crm-two-row.xlsx")
    sheet = book.add_worksheet("Сделки")
    sheet.write(0, 0, "Отчёт CRM: сделки с запросом на удаление")
    sheet.merge_range(2, 0, 2, 1, "Контакт")
    sheet.merge_range(2, 2, 2, 3, "Контактная информация")
    sheet.write(2, 4, "Сделка")
    sheet.write_row(3, 0, ["ID", "Имя", "E-mail", "Мобильный телефон", "Номер сделки"])
    for i, row in enumerate(_crm_rows()):
        sheet.write_row(4 + i, 0, row)
    book.close()
    return Case(
        "crm-two-row.xlsx",
        {"request_id_column": "Номер сделки", "columns": CRM_COLUMNS},
        Expected(rows=10, valid=20, invalid={}, repairs={}, header_row=4),
    )


def excel_names(folder: Path) -> Case:
    """An Excel sheet of ``Name <address>`` cells, as Outlook pastes them."""
    book = xlsxwriter.Workbook(folder / "excel-name-address.xlsx")
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Email"])
    cells = [
        f"Иван Петров <{_user(400)}>",
        f'"Petrov, Ivan" <{_user(401)}>',
        f"Anna Smith <{_user(402).upper()}>",
        _user(403),
        f"{_user(404)} <{_user(404)}>",  # the address as its own name: one address
        f"Anna <{_user(405)}>, Boris <{_user(406)}>",  # two people: several
    ]
    for i, cell in enumerate(cells, 1):
        sheet.write(i, 0, cell)
    book.close()
    return Case(
        "excel-name-address.xlsx",
        {},
        Expected(
            rows=6,
            valid=5,
            invalid={"several_addresses": 1},
            repairs={"display_name": 4},
            header_row=1,
        ),
        split=Expected(
            rows=6,
            valid=7,
            invalid={},
            repairs={"display_name": 4, "split": 1},
            header_row=1,
        ),
        several=[[_user(405), _user(406)]],
    )


def phone_prefixes(folder: Path) -> Case:
    """A phone column with ``00`` and ``8 10`` prefixes among ordinary numbers."""
    cells = [
        "00 49 30 2001365",  # repaired: 00 is no prefix in Russia
        "0049302001367",
        "00 7 900 000 05 01",
        "8 10 49 30 2001368",  # 810 is Russia's own prefix: read as before
        "8-10-44-20-7946-0958",
        "+7 900 000-05-02",
        "8 (900) 000-05-03",
        "00 999 123",  # no such country: still refused, saying why
    ]
    (folder / "phones-prefixes.csv").write_text(
        "phone\n" + "\n".join(cells) + "\n", encoding="utf-8"
    )
    return Case(
        "phones-prefixes.csv",
        {},
        Expected(
            rows=8,
            valid=7,
            invalid={"phone_invalid": 1},
            repairs={"international_prefix": 3},
            header_row=1,
        ),
    )


def three_addresses(folder: Path) -> Case:
    """One cell of three addresses, beside ordinary ones."""
    trio = [_user(600), _user(601), _user(602)]
    lines = ["ticket,email", f"T1,{_user(603)}", f'T2,"{", ".join(trio)}"', f"T3,{_user(604)}"]
    (folder / "three-addresses.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(
        "three-addresses.csv",
        {"request_id_column": "ticket"},
        Expected(rows=3, valid=2, invalid={"several_addresses": 1}, repairs={}, header_row=1),
        split=Expected(rows=3, valid=5, invalid={}, repairs={"split": 1}, header_row=1),
        several=[trio],
    )


def petrov(folder: Path) -> Case:
    """``"Petrov, Ivan" <ivan@x.ru>``: the comma inside the name is no second address."""
    lines = ["email", '"""Petrov, Ivan"" <ivan@x.ru>"', "ivan@x.ru"]
    (folder / "petrov-display-name.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(
        "petrov-display-name.csv",
        {},
        Expected(rows=2, valid=2, invalid={}, repairs={"display_name": 1}, header_row=1),
    )


BUILDERS = (helpdesk, crm_csv, crm_xlsx, excel_names, phone_prefixes, three_addresses, petrov)


def build(folder: Path) -> list[Case]:
    """Write every file of the corpus into ``folder``; their cases."""
    folder.mkdir(parents=True, exist_ok=True)
    return [make(folder) for make in BUILDERS]


if __name__ == "__main__":
    for case in build(Path(sys.argv[1])):
        print(case.file)
