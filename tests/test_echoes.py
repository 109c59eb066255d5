"""The echo scrubber: no token and no identifier, in any form, reaches an event."""

from __future__ import annotations

import json
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.echoes import MAX_ERROR_TEXT, Echoes, identifier_forms

KEY = "k:0123abcd9876543210"
TOKEN = "tok/Secret+123=="
ECHOES = Echoes.for_run(TOKEN)


@pytest.mark.parametrize(
    ("text", "raw", "expected"),
    [
        (None, "a@example.com", None),
        ("Profile a@example.com not found", "a@example.com", f"Profile {KEY} not found"),
        ("Profile A@Example.COM not found", "a@example.com", f"Profile {KEY} not found"),
        ("a@example.com, again a@example.com", "a@example.com", f"{KEY}, again {KEY}"),
        ("nothing here", "a@example.com", "nothing here"),
        ("no identifier", "", "no identifier"),
        ("Successful operation", "a@example.com", "Successful operation"),
        # the local part alone, as some services report it
        ("user 'ivan.petrov' unknown", "ivan.petrov@example.com", f"user '{KEY}' unknown"),
        # URL-encoded and JSON-escaped (how erasure sends a non-ASCII email)
        ("bad email=a%40example.com", "a@example.com", f"bad email={KEY}"),
        (
            "bad " + json.dumps("иван@пример.рф")[1:-1],
            "иван@пример.рф",
            f"bad {KEY}",
        ),
        # a short value is replaced only as a whole word
        ("value 12 is short, 123 is not", "12", f"value {KEY} is short, 123 is not"),
    ],
)
def test_identifier_forms_become_the_key(text: str | None, raw: str, expected: str | None) -> None:
    assert ECHOES.scrub(text, raw, KEY, "email") == expected


@pytest.mark.parametrize(
    "echoed",
    [
        "+79161234567",
        "79161234567",
        "89161234567",
        "9161234567",
        "8 (916) 123-45-67",
        "+7 916 123-45-67",
        "tel:+7-916-123-45-67",
        "%2B79161234567",
    ],
)
def test_every_phone_form_becomes_the_key(echoed: str) -> None:
    out = ECHOES.scrub(f"phone [{echoed}] unknown", "+79161234567", KEY, "phone")
    assert out == f"phone [{KEY}] unknown"


@pytest.mark.parametrize(
    "echoed",
    [TOKEN, json.dumps(TOKEN)[1:-1], quote(TOKEN, safe=""), quote_plus(TOKEN), TOKEN.upper()],
)
def test_the_token_in_every_form_is_removed(echoed: str) -> None:
    out = ECHOES.scrub(f"bad token {echoed} here", "a@example.com", KEY)
    assert out == "bad token <token> here"


def test_an_echoed_request_body_keeps_neither_token_nor_identifier() -> None:
    body = json.dumps(
        {"token": TOKEN, "db_id": 1, "matching": "email", "email": "ivan@example.com"}
    )
    out = ECHOES.scrub(f"incorrect request: {body}", "ivan@example.com", KEY)
    assert out is not None
    assert TOKEN not in out and "ivan" not in out
    assert "<token>" in out and KEY in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("also petr@example.org was wrong", "also <email> was wrong"),
        ("also petr%40example.org", "also <email>"),
        ("call +49 30 2001365 or 8 (916) 765-43-21", "call <phone> or <phone>"),
        ("id 123456789012 unknown", "id <phone> unknown"),
    ],
)
def test_other_contact_shapes_are_masked(text: str, expected: str) -> None:
    assert ECHOES.scrub(text, "ivan@example.com", KEY) == expected


def test_the_key_put_in_is_not_rescanned() -> None:
    key = "k:1234567890123456"  # its digits would read as a phone number
    assert ECHOES.scrub("x 12345 y", "+12345", key, "custom") == f"x {key} y"


def test_cut_to_the_limit_after_scrubbing() -> None:
    out = ECHOES.scrub("bad " + TOKEN + " " + "x" * 1000, "a@example.com", KEY)
    assert out is not None
    assert out.startswith("bad <token> ")
    assert len(out) == MAX_ERROR_TEXT == 200


def test_forms_of_an_email_include_the_local_part() -> None:
    forms = identifier_forms("ivan@example.com", "email")
    assert {"ivan@example.com", "ivan", "ivan%40example.com"} <= forms


@given(
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    local=st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20),
    encode=st.sampled_from(
        [str.upper, lambda s: quote(s, safe=""), quote_plus, lambda s: json.dumps(s)[1:-1]]
    ),
)
def test_an_email_never_leaks(prefix: str, suffix: str, local: str, encode: object) -> None:
    raw = f"{local}@example.com"
    out = ECHOES.scrub(prefix + encode(raw) + suffix, raw, KEY)  # type: ignore[operator]
    assert out is not None
    assert raw.casefold() not in out.casefold()
    assert quote(raw, safe="").casefold() not in out.casefold()


@given(number=st.integers(min_value=9000000000, max_value=9999999999), sep=st.sampled_from(" -."))
def test_a_phone_never_leaks(number: int, sep: str) -> None:
    digits = str(number)
    raw = f"+7{digits}"
    shown = f"8 ({digits[:3]}) {digits[3:6]}{sep}{digits[6:8]}{sep}{digits[8:]}"
    out = ECHOES.scrub(f"no profile for {shown}!", raw, KEY, "phone")
    assert out is not None
    assert sum(c.isdigit() for c in out.replace(KEY, "")) < 7
