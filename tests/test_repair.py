"""Repairs where the intent is certain; cells of several addresses; refusals that say why."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.intake import normalize
from erasure.intake.repair import Cell, Repair, email_cell, emails, phone_cell, phones


@pytest.mark.parametrize(
    ("raw", "value", "repairs"),
    [
        ("mailto:Ivan@X.ru", "ivan@x.ru", (Repair.MAILTO,)),
        ("MAILTO:ivan@x.ru.", "ivan@x.ru", (Repair.MAILTO, Repair.TRAILING_DOT)),
        ("<ivan@x.ru>", "ivan@x.ru", (Repair.QUOTED,)),
        ('"ivan@x.ru"', "ivan@x.ru", (Repair.QUOTED,)),
        ("'ivan@x.ru'", "ivan@x.ru", (Repair.QUOTED,)),
        ("«ivan@x.ru»", "ivan@x.ru", (Repair.QUOTED,)),
        ('"Petrov, Ivan" <ivan@x.ru>', "ivan@x.ru", (Repair.DISPLAY_NAME,)),
        ("Иван Петров <Ivan@X.ru>", "ivan@x.ru", (Repair.DISPLAY_NAME,)),
        ("ivan@x.ru <ivan@x.ru>", "ivan@x.ru", (Repair.DISPLAY_NAME,)),
        ("ivan@x.ru.", "ivan@x.ru", (Repair.TRAILING_DOT,)),
        ("mailto:<ivan@x.ru>", "ivan@x.ru", (Repair.MAILTO, Repair.QUOTED)),
        (" ivan@x.ru ", "ivan@x.ru", ()),
    ],
)
def test_a_certain_repair(raw: str, value: str, repairs: tuple[Repair, ...]) -> None:
    assert Cell((value,), repairs=repairs) == email_cell(raw)


@pytest.mark.parametrize(
    ("raw", "reason", "code"),
    [
        ("a@x.ru, b@y.ru", "holds 2 different addresses", "several_addresses"),
        ("a@x.ru b@y.ru", "holds 2 different addresses", "several_addresses"),
        ("a@x.ru;b@y.ru;c@z.ru", "holds 3 different addresses", "several_addresses"),
        ("Anna <a@x.ru>, Boris <b@y.ru>", "holds 2 different addresses", "several_addresses"),
        ("mailto:a@x.ru?subject=Delete", "a mailto: link with parameters", None),
        ("mailto:a@x.ru,b@y.ru", "a mailto: link with parameters or several addresses", None),
        ("mailto:ivan", "not an email address: no @", None),
        ("<ivan@x..ru>", "two dots", None),
        ("ivan@x.ru..", "the domain has an empty part", None),
        ("ivan.x.ru", "no @", None),
        ("<ivan@x.ru", "not allowed before the @", None),
        ("\"ivan@x.ru'", "not allowed before the @", None),
    ],
)
def test_a_refusal_names_the_fault_found(raw: str, reason: str, code: str | None) -> None:
    cell = email_cell(raw)
    assert () == cell.values
    assert cell.reason is not None and reason in cell.reason
    assert code == cell.code
    for part in ("a@x", "b@y", "ivan@"):
        assert part not in cell.reason


def test_split_gives_each_address_once() -> None:
    cell = email_cell("A@x.ru, Boris <b@y.ru>; a@x.ru.", split=True)
    assert ("a@x.ru", "b@y.ru") == cell.values
    assert Repair.SPLIT in cell.repairs
    bad = email_cell("a@x.ru, b@y..ru", split=True)
    assert () == bad.values
    assert bad.reason is not None and bad.reason.startswith("address 2 of 2 in the cell:")


@given(st.text(max_size=40))
def test_a_cell_the_strict_rule_takes_is_never_repaired(raw: str) -> None:
    """Only invalid cells change: what normalize.email accepts reads exactly as before."""
    try:
        value = normalize.email(raw)
    except normalize.Invalid:
        return
    assert Cell((value,)) == email_cell(raw, split=True)


@given(st.from_regex(r"(mailto:)?[\"<]?[a-z]{1,8}@[a-z]{1,8}\.(ru|com)\.?[\">]?", fullmatch=True))
def test_a_repaired_address_normalises_to_itself(raw: str) -> None:
    cell = email_cell(raw)
    for value in cell.values:
        assert value == normalize.email(value)


@pytest.mark.parametrize(
    ("raw", "e164", "repaired"),
    [
        ("00 49 30 2001365", "+49302001365", True),
        ("0049-30-2001365", "+49302001365", True),
        ("8 10 49 30 2001365", "+49302001365", False),  # phonenumbers reads Russia's 810
        ("8 (916) 123-45-67", "+79161234567", False),
        ("+7 916 1234567", "+79161234567", False),
    ],
)
def test_an_international_prefix_is_a_plus(raw: str, e164: str, repaired: bool) -> None:
    cell = phone_cell(raw, "RU")
    assert (e164,) == cell.values
    assert ((Repair.INTERNATIONAL_PREFIX,) if repaired else ()) == cell.repairs


def test_a_prefix_before_no_number_still_says_why() -> None:
    cell = phone_cell("00 999 123", "RU")
    assert cell.reason is not None and cell.reason.startswith("dialled from abroad (+), but")
    assert "unknown country code" in cell.reason
    assert "not valid for region RU" in (phone_cell("12345", "RU").reason or "")


def test_the_column_forms_agree_with_the_cells() -> None:
    raw = pl.Series(["a@x.ru", "mailto:b@x.ru", "a@x.ru, c@x.ru", None, "", "junk"])
    found = emails(raw, split=True)
    assert ["a@x.ru", "b@x.ru", "a@x.ru", None, None, None] == found["value"].to_list()
    assert [None, None, ["c@x.ru"], None, None, None] == found["extra"].to_list()
    assert [None, "mailto", "split", None, None, None] == found["repair"].to_list()
    assert found["reason"].to_list()[5] == "not an email address: no @"
    numbers = phones(pl.Series(["00 49 30 2001365", "+79161234567"]), "RU")
    assert ["+49302001365", "+79161234567"] == numbers["value"].to_list()
