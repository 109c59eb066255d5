"""Writes the bad-input corpus beside this script, deterministically.

    .venv/bin/python tests/corpus/make_corpus.py

Each file is a kind of input people really hand over, most of them broken;
``expected.toml`` says what intake must answer for each. The 50 MB line, a
directory and a missing file are made by the test itself (tests/test_intake_corpus.py).
"""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl
import xlsxwriter

HERE = Path(__file__).parent
RNG = random.Random(65)


def _xlsx(rows: list[list[object]], *, start_row: int = 0, sheets: int = 1) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.set_properties({"created": datetime(2024, 5, 1)})  # the same bytes on every run
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(start_row + r, c, value)
    for i in range(1, sheets):
        book.add_worksheet(f"more{i}").write(0, 0, "ignored")
    book.close()
    return buffer.getvalue()


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(zipfile.ZipInfo("hello.txt", (2024, 5, 1, 0, 0, 0)), "not a workbook")
    return buffer.getvalue()


def _noise(n: int, *, nul: bool) -> bytes:
    data = bytes(RNG.randrange(256) for _ in range(n))
    return data if nul else data.replace(b"\x00", b"\x01")


FILES: dict[str, bytes | Callable[[], bytes]] = {
    # not usable at all
    "empty.csv": b"",
    "whitespace-only.csv": b"\n\n\n",
    "binary-with-nul.csv": lambda: _noise(4096, nul=True),
    "binary-no-nul.csv": lambda: b"\x89" + _noise(4096, nul=False),
    "invalid-utf8-not-cp1251.csv": b"email\nivan@mail.ru\n\x98\x98\x98@mail.ru\n",
    "latin1-accents.csv": "email;name\nana@mail.es;Jos\xe9 Mu\xf1oz\n".encode("latin-1"),
    "control-characters.csv": b"email\n" + b"\x01\x02\x03\x04\x05\x06\x07\x08" * 64 + b"\n",
    "no-identifier-column.csv": b"name,city\nIvan,Moscow\n",
    "header-is-data.csv": b"ivan@mail.ru,+79161234567\npetr@mail.ru,+79161234568\n",
    "duplicate-email-columns.csv": b"email,EMAIL\na@mail.ru,b@mail.ru\n",
    "unterminated-quote.csv": b'email,name\n"ivan@mail.ru,Ivan\npetr@mail.ru,Petr\n',
    "zip-named-csv.csv": _zip,
    "gzip-named-csv.csv": lambda: gzip.compress(b"email\nivan@mail.ru\n", mtime=0),
    "parquet-named-csv.csv": lambda: _parquet(pl.DataFrame({"email": ["ivan@mail.ru"]})),
    "csv-named-xlsx.xlsx": b"email\nivan@mail.ru\n",
    "zip-named-xlsx.xlsx": _zip,
    "ole-named-xlsx.xlsx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
    "empty-sheet.xlsx": lambda: _xlsx([]),
    "csv-named-parquet.parquet": b"email\nivan@mail.ru\n",
    "parquet-phone-fractional.parquet": lambda: _parquet(
        pl.DataFrame({"phone": [79161234567.0, 79161234567.5]})
    ),
    "parquet-phone-struct.parquet": lambda: _parquet(
        pl.DataFrame({"phone": [{"number": "+79161234567"}]})
    ),
    "parquet-email-boolean.parquet": lambda: _parquet(pl.DataFrame({"email": [True, False]})),
    "not-json.ndjson": b'{"email": "ivan@mail.ru"}\nemail=petr@mail.ru\n',
    "json-array.jsonl": b'[{"email": "ivan@mail.ru"}]\n',
    "ndjson-email-object.ndjson": b'{"email": {"address": "ivan@mail.ru"}}\n',
    "ndjson-cp1251.ndjson": '{"email": "ivan@mail.ru", "name": "Иван"}\n'.encode("cp1251"),
    "requests.txt": b"email\nivan@mail.ru\n",
    # usable, with something to reject or to notice
    "header-only.csv": b"email,phone\n",
    "header-only.xlsx": lambda: _xlsx([["email", "phone"]]),
    "only-invisible-cells.csv": "email\n\u200b\n\u00a0\n\ufeff \n".encode(),
    "mixed-valid-invalid.csv": (
        "ticket,email,phone\n"
        "T-1,ivan@mail.ru,8 (916) 123-45-67\n"
        "T-2,not-an-email,+7 916 123-45-68\n"
        "T-3,petr@mail,12\n"
        "T-4,IVAN@MAIL.RU ,\n"
        "T-5,ivаn@mail.ru,8 916 123 45 67 доб. 5\n"
        "T-6,,\n"
    ).encode(),
    "cp1251-semicolon.csv": (
        "Заявка;Электронная почта;Телефон\n"
        "З-1;ivan@mail.ru;8 (916) 123-45-67\n"
        "З-2;Петров@почта.рф;\n"
        "З-3;olga@yandex.ru;+7 926 000-00-00\n"
    ).encode("cp1251"),
    "utf8-bom-semicolon.csv": "\ufeffemail;phone\nivan@mail.ru;89161234567\n".encode(),
    "utf16-tab.csv": "email\tphone\r\nivan@mail.ru\t+79161234567\r\n".encode("utf-16"),
    "tab-separated.tsv": b"email\tname\nivan@mail.ru\tIvan, Jr\npetr@mail.ru\tPetr\n",
    "pipe-separated.csv": b"email|name\nivan@mail.ru|Ivan\npetr@mail.ru|Petr, Sr\n",
    "quoted-newlines.csv": b'email,note\nivan@mail.ru,"line one\nline two"\nbad@,"x"\n',
    "ragged-rows.csv": b"email,name\nivan@mail.ru,Ivan,extra,cells\npetr@mail.ru\n",
    "bad-db-id.csv": (
        b"db,email\n1,ivan@mail.ru\nx,petr@mail.ru\n,olga@mail.ru\n-3,anna@mail.ru\n2,\n"
    ),
    "bad-received-at.csv": b"email,received_at\nivan@mail.ru,2024-05-01\npetr@mail.ru,yesterday\n",
    "formula-cells.csv": b'email\n=HYPERLINK("http://x")\n+79161234567\n@SUM(A1)\n',
    "ndjson-blank-lines.ndjson": b'{"email": "ivan@mail.ru"}\n\n  \n{"email": "bad"}\n',
    "parquet-phone-whole-floats.parquet": lambda: _parquet(
        pl.DataFrame({"phone": [79161234567.0, None, 79161234568.0]})
    ),
    "xlsx-leading-blank-rows.xlsx": lambda: _xlsx(
        [["email"], ["ivan@mail.ru"], [None], ["broken"]], start_row=2, sheets=2
    ),
}


def main() -> None:
    for name, content in FILES.items():
        data = content() if callable(content) else content
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
