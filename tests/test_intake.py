"""Intake end to end on real files: formats, mapping, dedupe, keys, rejects file."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure import intake, job, safecells
from erasure.errors import ConfigError, UsageError
from erasure.keys import Keyer
from erasure.report.rejects import write_rejects
from tests.conftest import LEDGER_KEY, _toml

KEYER = Keyer(LEDGER_KEY.encode())

HEADER = ["ticket", "email", "phone", "crm", "received"]
ROWS: list[list[object]] = [
    ["T-1", "Ivan@Mail.ru", "8 (916) 123-45-67", 1001, "2024-05-01"],
    ["T-1", "ivan@mail.ru ", None, 1001, "2024-05-01"],  # same request, same person
    ["T-2", "ivan@mail.ru", "+7 916 123-45-67", None, "02.05.2024"],  # asked again
    ["T-3", "not-an-email", "12", 1003, "2024-05-03"],
    ["T-4", None, "+79261234567", 1004, None],
]


def _job(tmp_path: Path, **inp: object) -> job.Job:
    settings: dict[str, object] = {"db_id": 1, **inp}
    if "db_id_column" in settings:
        settings.pop("db_id")
    path = tmp_path / "job.toml"
    path.write_text(
        _toml({"api": {"base_url": "http://127.0.0.1:9"}, "input": settings}), encoding="utf-8"
    )
    return job.load(path)


def _typed_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticket": [r[0] for r in ROWS],
            "email": [r[1] for r in ROWS],
            "phone": [r[2] for r in ROWS],
            "crm": [r[3] for r in ROWS],
            "received": ["2024-05-01", "2024-05-01", "02.05.2024", "2024-05-03", None],
        },
        schema={
            "ticket": pl.String,
            "email": pl.String,
            "phone": pl.String,
            "crm": pl.Int64,
            "received": pl.String,
        },
    )


def _write(path: Path) -> None:
    """ROWS in the format the suffix names."""
    text_rows = [["" if v is None else str(v) for v in row] for row in ROWS]
    if path.name.endswith("cp1251.csv"):
        with path.open("w", encoding="cp1251", newline="") as f:
            writer = csv.writer(f, delimiter=";")
            writer.writerow([*HEADER, "Имя"])
            writer.writerows([*row, "Иван Петров"] for row in text_rows)
    elif path.suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writerow(HEADER)
            writer.writerows(text_rows)
    elif path.suffix == ".parquet":
        _typed_frame().write_parquet(path)
    elif path.suffix in (".ndjson", ".jsonl"):
        with path.open("w", encoding="utf-8") as f:
            for row in _typed_frame().iter_rows(named=True):
                f.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
    elif path.suffix == ".xlsx":
        book = xlsxwriter.Workbook(path)
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, HEADER)
        for r, row in enumerate(_typed_frame().rows(), 1):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
        book.close()


FORMATS = ["in.csv", "in-cp1251.csv", "in.tsv", "in.parquet", "in.xlsx", "in.ndjson", "in.jsonl"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_gives_the_same_items(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    _write(path)
    the_job = _job(
        tmp_path,
        path=name,
        request_id_column="ticket",
        received_at_column="received",
        columns={
            "email": "email",
            "phone": "phone",
            "custom": {"column": "crm", "field_name": "CRM_ID"},
        },
    )
    result = intake.read(the_job, KEYER)
    items = result.items
    assert items.schema == intake.ITEMS_SCHEMA
    shift = 1 if name.endswith(("ndjson", "jsonl")) else 0  # a line number, no header
    assert items.select("request_id", "matching", "value", "row").rows() == [
        ("T-1", "email", "ivan@mail.ru", 2 - shift),
        ("T-1", "phone", "+79161234567", 2 - shift),
        ("T-1", "custom", "1001", 2 - shift),
        ("T-2", "email", "ivan@mail.ru", 4 - shift),
        ("T-2", "phone", "+79161234567", 4 - shift),
        ("T-3", "custom", "1003", 5 - shift),
        ("T-4", "phone", "+79261234567", 6 - shift),
        ("T-4", "custom", "1004", 6 - shift),
    ]
    typed = name.endswith((".parquet", ".xlsx", ".ndjson", ".jsonl"))
    custom = items.filter(pl.col("matching") == "custom")
    assert custom.get_column("value_is_int").to_list() == [typed] * 3
    assert custom.get_column("field_name").unique().to_list() == ["CRM_ID"]
    assert items.get_column("received_at").to_list()[:4] == [
        datetime(2024, 5, 1, tzinfo=UTC)
    ] * 3 + [datetime(2024, 5, 2, tzinfo=UTC)]
    assert result.invalid.select("row", "column", "reason", "words").rows() == [
        (5 - shift, "email", "email_invalid", "column 'email' not an email address: no @"),
        (
            5 - shift,
            "phone",
            "phone_invalid",
            "column 'phone' phone number is not valid for region RU",
        ),
    ]
    assert result.counts == intake.Counts(
        rows=5,
        blank=0,
        no_identifier=0,
        identifiers=12,
        valid=10,
        invalid_cells=2,
        skipped=0,
        duplicates=2,  # valid 10 = 8 (request, identifier) pairs + 2 folded
        pairs=8,  # over 6 keys: a key named by two requests is two pairs
        keys=6,
        invalid=2,
        requests=4,
    )
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for row in items.iter_rows(named=True):
        assert row["key"] == KEYER.key(
            row["db_id"], row["matching"], row["resource_id"], row["field_name"], row["value"]
        )


def test_same_key_from_any_format(tmp_path: Path) -> None:
    """The key is over the text form: a CSV and a Parquet file give the same keys."""
    keys = []
    for name in ("in.csv", "in.parquet"):
        _write(tmp_path / name)
        the_job = _job(
            tmp_path, path=name, columns={"custom": {"column": "crm", "field_name": "CRM_ID"}}
        )
        keys.append(intake.read(the_job, KEYER).items.get_column("key").to_list())
    assert keys[0] == keys[1]


def test_several_identifiers_per_row_and_per_row_ids(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        "db,res,email,phone,profile_id,tags\n"
        '1,24,ivan@mail.ru,89161234567, 5f1a2b3c4d5e6f7a8b9c0d1e ,"vip, newsletter"\n'
        "2,,ivan@mail.ru,,,\n"
        "1,x,petr@mail.ru,,,\n",
        encoding="utf-8",
    )
    the_job = _job(
        tmp_path,
        path="in.csv",
        db_id_column="db",
        resource_id_column="res",
        columns={
            "email": "email",
            "phone": "phone",
            "profile_id": "profile_id",
            "custom": {"column": "tags", "field_name": "tags"},
        },
    )
    result = intake.read(the_job, KEYER)
    assert result.items.select(
        "db_id", "matching", "resource_id", "field_name", "value"
    ).rows() == [
        (1, "email", 24, None, "ivan@mail.ru"),
        (1, "phone", 24, None, "+79161234567"),
        (1, "profile_id", None, None, "5f1a2b3c4d5e6f7a8b9c0d1e"),
        (1, "custom", None, "tags", "vip, newsletter"),
        (2, "email", None, None, "ivan@mail.ru"),
    ]
    assert result.counts.keys == 5  # another database: another key
    assert result.invalid.select("row", "column", "reason", "words", "value").rows() == [
        (
            4,
            "res",
            "resource_id_invalid",
            "column 'res' resource_id is not a positive integer: the row is skipped",
            "x",
        )
    ]


def test_default_columns_any_case_and_mapping_forgives_spaces(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(" EMAIL ,Phone\nivan@mail.ru,\n", encoding="utf-8")
    assert intake.read(_job(tmp_path, path="in.csv"), KEYER).counts.valid == 1
    mapped = _job(tmp_path, path="in.csv", columns={"email": "email"})
    assert intake.read(mapped, KEYER).counts.valid == 1


def test_input_override_and_no_input(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("email\nivan@mail.ru\n", encoding="utf-8")
    result = intake.read(_job(tmp_path, path="missing.csv"), KEYER, tmp_path / "other.csv")
    assert result.path == tmp_path / "other.csv"
    assert result.counts.valid == 1
    with pytest.raises(ConfigError, match=r"input\.path is not set"):
        intake.read(_job(tmp_path), KEYER)


def test_typed_received_at(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "email": ["a@mail.ru", "b@mail.ru"],
            "day": [date(2024, 5, 1), None],
            "moment": [datetime(2024, 5, 1, 12), datetime(2024, 5, 2, 1)],
        }
    ).with_columns(pl.col("moment").dt.replace_time_zone("Europe/Moscow")).write_parquet(
        tmp_path / "in.parquet"
    )
    for column, expected in (
        ("day", [datetime(2024, 5, 1, tzinfo=UTC), None]),
        ("moment", [datetime(2024, 5, 1, 9, tzinfo=UTC), datetime(2024, 5, 1, 22, tzinfo=UTC)]),
    ):
        the_job = _job(tmp_path, path="in.parquet", received_at_column=column)
        assert intake.read(the_job, KEYER).items.get_column("received_at").to_list() == expected


def test_typed_phone_and_whole_number_floats(tmp_path: Path) -> None:
    pl.DataFrame({"phone": [79161234567, None], "crm": [12.0, 13.0]}).write_parquet(
        tmp_path / "in.parquet"
    )
    the_job = _job(
        tmp_path,
        path="in.parquet",
        columns={"phone": "phone", "custom": {"column": "crm", "field_name": "CRM_ID"}},
    )
    items = intake.read(the_job, KEYER).items
    assert items.select("value", "value_is_int").rows() == [
        ("+79161234567", False),
        ("12", True),
        ("13", True),
    ]


def test_ndjson_mixed_kinds_are_text(tmp_path: Path) -> None:
    (tmp_path / "in.ndjson").write_text(
        '{"crm": 12, "email": "a@mail.ru"}\n{"crm": "A-7"}\n', encoding="utf-8"
    )
    the_job = _job(
        tmp_path, path="in.ndjson", columns={"custom": {"column": "crm", "field_name": "crm"}}
    )
    items = intake.read(the_job, KEYER).items
    assert items.select("value", "value_is_int").rows() == [("12", False), ("A-7", False)]


# ---------------------------------------------------------------- dedupe: first seen first

TICKETS = st.sampled_from(["", "T-1", "T-2", "T-3"])
PEOPLE = st.sampled_from(
    ["ivan@mail.ru", "IVAN@mail.ru ", "petr@mail.ru", "olga@mail.ru", "bad", ""]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TICKETS, PEOPLE), max_size=25))
def test_dedupe_keeps_first_seen_order(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (folder / "in.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["ticket", "email"])
            writer.writerows(rows)
        result = intake.read(_job(folder, path="in.csv", request_id_column="ticket"), KEYER)
    expected: list[tuple[str | None, str]] = []
    for ticket, person in rows:
        value = person.strip().lower()
        pair = (ticket or None, value)
        if "@" in value and pair not in expected:
            expected.append(pair)
    assert result.items.select("request_id", "value").rows() == expected
    valid = sum(1 for _, p in rows if "@" in p)
    counts = result.counts
    assert counts.valid == valid
    assert counts.keys == len({v for _, v in expected})
    assert counts.valid == counts.pairs + counts.duplicates
    assert counts.identifiers == counts.valid + sum(1 for _, p in rows if p == "bad")


# ---------------------------------------------------------------- the rejects file


def _records(values: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": [2, 3][: len(values)],
            "column": ["email", "phone"][: len(values)],
            "reason": ["email_invalid", "phone_invalid"][: len(values)],
            "words": ["column 'email' not an email address: no @", "-"][: len(values)],
            "value": values,
            "request_id": ["T-1", "T-2"][: len(values)],
            "db_id": [1, 1][: len(values)],
            "received_at": [None, None][: len(values)],
        },
        schema=intake.INVALID_SCHEMA,
    )


def test_write_rejects_is_private_and_inert(tmp_path: Path) -> None:
    """Owner-only, formula cells neutralised, UTF-8 with a BOM so that Excel reads it."""
    path = tmp_path / "rejects.csv"
    path.write_text("old, readable by all\n", encoding="utf-8")
    path.chmod(0o644)
    write_rejects(_records(['=HYPERLINK("http://x")', "+7 916"]), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f)) == [
            ["row", "request_id", "column", "reason", "value", "words"],
            [
                "2",
                "T-1",
                "email",
                "email_invalid",
                '\'=HYPERLINK("http://x")',
                "column 'email' not an email address: no @",
            ],
            ["3", "T-2", "phone", "phone_invalid", "'+7 916", "'-"],
        ]


def test_write_rejects_xlsx_is_a_real_workbook(tmp_path: Path) -> None:
    path = tmp_path / "rejects.xlsx"
    write_rejects(_records(["=1+1"]), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = pl.read_excel(path, engine="calamine")
    assert back.get_column("value").to_list() == ["'=1+1"]
    assert back.get_column("reason").to_list() == ["email_invalid"]


def test_write_rejects_refuses_another_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.csv or \.xlsx"):
        write_rejects(_records([]), tmp_path / "r.json")


def test_write_rejects_new_file_never_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_rejects(_records([]), tmp_path / "r.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o600
    assert (tmp_path / "r.csv").read_text(
        encoding="utf-8-sig"
    ) == "row,request_id,column,reason,value,words\n"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+79161234567", "'+79161234567"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("＝1", "'＝1"),
        ("ivan@mail.ru", "ivan@mail.ru"),
        ("", ""),
        (" =1", " =1"),
    ],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert safecells.neutralise(cell) == expected
    frame = safecells.neutralise_frame(pl.DataFrame({"c": [cell, None], "n": [1, 2]}))
    assert frame.rows() == [(expected, 1), (None, 2)]


@given(st.lists(st.text(max_size=5), max_size=10))
def test_neutralise_expr_agrees(cells: list[str]) -> None:
    frame = pl.DataFrame({"c": cells}, schema={"c": pl.String})
    got = frame.select(safecells.neutralise_expr(pl.col("c"))).to_series().to_list()
    assert got == [safecells.neutralise(c) for c in cells]


SAMPLES = Path(__file__).parent.parent / "sample_data"


def test_sample_files_agree(tmp_path: Path) -> None:
    """sample_data/requests.* are the same requests: the same keys from every format."""
    the_job = _job(
        tmp_path,
        path=str(SAMPLES / "requests.csv"),
        request_id_column="ticket",
        received_at_column="received_at",
        columns={
            "email": "email",
            "phone": "phone",
            "custom": {"column": "crm_id", "field_name": "CRM_ID"},
        },
    )
    first = intake.read(the_job, KEYER)
    assert first.counts.invalid > 0 and first.counts.duplicates > 0
    assert 60 <= first.counts.rows <= 200
    for name in ("requests-excel.csv", "requests.xlsx", "requests.parquet", "requests.ndjson"):
        other = intake.read(the_job, KEYER, SAMPLES / name)
        assert other.counts == first.counts, name
        assert other.items.select("request_id", "key").equals(
            first.items.select("request_id", "key")
        )
        assert other.invalid.select("column", "reason").equals(
            first.invalid.select("column", "reason")
        )
