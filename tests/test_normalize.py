"""The normalisation rules: examples, idempotence, and vectorised == per value."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure import normalize
from erasure.normalize import Invalid

# ---------------------------------------------------------------- emails


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ivan@mail.ru", "ivan@mail.ru"),
        ("  Ivan@Mail.RU \t", "ivan@mail.ru"),
        ("\u200bivan@mail.ru\ufeff", "ivan@mail.ru"),
        ("iv\u00adan@mail.ru", "ivan@mail.ru"),  # soft hyphen
        ("\u00a0ivan.petrov+tag@sub.mail.ru\u2009", "ivan.petrov+tag@sub.mail.ru"),
        ("o'brien@example.co.uk", "o'brien@example.co.uk"),
        ("user@xn--80a1acny.xn--p1ai", "user@xn--80a1acny.xn--p1ai"),  # punycode kept as is
        ("Петров@почта.рф", "петров@почта.рф"),  # one script per part: kept
        ("ivan@почта.рф", "ivan@почта.рф"),
        ("josé@mail.es", "josé@mail.es"),
    ],
)
def test_email_normalised(raw: str, expected: str) -> None:
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ivan.mail.ru", "no @"),
        ("ivan@@mail.ru", "more than one @"),
        ("@mail.ru", "nothing before the @"),
        ("ivan@", "nothing after the @"),
        ("ivan@mail", "the domain has no dot"),
        ("ivan petrov@mail.ru", "contains a space"),
        ("ivan@mail..ru", "empty part"),
        (".ivan@mail.ru", "misplaced dot"),
        ("iv..an@mail.ru", "misplaced dot"),
        ("ivan@-mail.ru", "hyphen"),
        ("ivan@mail.r1", "top-level domain is not letters"),
        ("ivan@mail_ru.com", "«_» is not allowed in the domain"),
        ("ivan,petr@mail.ru", "«,» is not allowed before the @"),
        ("ivаn@mail.ru", "mixes Latin letters with Cyrillic"),  # Cyrillic а
        ("ivan@mаil.ru", "mixes Latin letters with Cyrillic"),
        ("İvan@mail.ru", "mixes Latin letters"),  # lower-cases to i + combining dot
        ("сео@mail.ru", "Cyrillic or Greek letters that look like Latin ones"),
        ("ｉｖａｎ@mail.ru", "full-width"),
        ("𝐢van@mail.ru", "styled"),
        ("jose\u0301@mail.es", "decomposed"),
        ("x" * 65 + "@mail.ru", "more than 64 characters before the @"),
        ("a@" + "b" * 250 + ".ru", "longer than 254 characters"),
        ("x" * 10_000_000, "longer than 254 characters"),
        ("=HYPERLINK(1)", "no @"),
    ],
)
def test_email_rejected(raw: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize.email(raw)
    assert reason in caught.value.reason


@pytest.mark.parametrize("raw", ["", "   ", "\u200b", "\u00a0\ufeff"])
def test_blank_is_not_an_identifier(raw: str) -> None:
    for rule in (normalize.email, normalize.text, lambda v: normalize.phone(v, "RU")):
        with pytest.raises(Invalid, match="empty"):
            rule(raw)


EMAILISH = st.text(
    alphabet=st.sampled_from(
        [*"abcXYZ019.@-_+'  ,", "\u200b", "\u00a0", "а", "о", "İ", "ß", "é", "ｉ", "\u0301"]
    ),
    max_size=30,
)


@given(st.one_of(st.emails(), EMAILISH, st.text(max_size=40)))
def test_email_idempotent(raw: str) -> None:
    try:
        once = normalize.email(raw)
    except Invalid:
        return
    assert normalize.email(once) == once


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.emails(), EMAILISH, st.none()), max_size=40))
def test_emails_vectorised_agree(raws: list[str | None]) -> None:
    found = normalize.emails(pl.Series(raws, dtype=pl.String))
    assert found.rows() == [_reference(normalize.email, r) for r in raws]


def _reference(rule: object, raw: str | None) -> tuple[str | None, str | None]:
    if raw is None:
        return (None, None)
    try:
        return (rule(raw), None)  # type: ignore[operator]
    except Invalid as exc:
        return (None, None if exc.reason == "empty" else exc.reason)


# ---------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 (916) 123-45-67", "+79161234567"),
        ("+7 916 123-45-67", "+79161234567"),
        ("+79161234567", "+79161234567"),
        ("79161234567", "+79161234567"),
        ("9161234567", "+79161234567"),
        ("8-916-123-45-67", "+79161234567"),
        ("8\u00a0916\u00a0123\u00a045\u00a067", "+79161234567"),
        ("＋7 916 123 45 67", "+79161234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+380 44 123 4567", "+380441234567"),
        ("8 10 44 20 7946 0958", "+442079460958"),  # 810: Russia's international prefix
    ],
)
def test_phone_normalised(raw: str, expected: str) -> None:
    assert normalize.phone(raw, "RU") == expected
    assert normalize.phones(pl.Series([raw]), "RU").rows() == [(expected, None)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12", "not valid for region RU"),
        ("+7 000 000-00-00", "not valid for region RU"),
        ("+44 123", "not valid for country code +44"),
        ("+999 123456", "unknown country code"),
        ("abc", "contains letters"),
        ("8 800 FLOWERS", "contains letters"),
        ("8 916 123-45-67 доб. 12", "contains letters"),
        ("+7 916 123-45-67, +7 926 123-45-67", "one number per cell"),
        ("8 916 123-45-67 / 8 926 123-45-67", "one number per cell"),
        ("+7 (916) 123-45-67 #12", "contains «#»"),
        ("1" * 300, "too long"),
        ("+" + "7" * 10_000_000, "too long"),
    ],
)
def test_phone_rejected(raw: str, reason: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize.phone(raw, "RU")
    assert reason in caught.value.reason


def test_phone_region_reads_local_numbers() -> None:
    assert normalize.phone("020 7946 0958", "GB") == "+442079460958"
    with pytest.raises(Invalid, match="not valid for region RU"):
        normalize.phone("020 7946 0958", "RU")


PHONEISH = st.text(
    alphabet=st.sampled_from([*"0123456789+-() .", "\u00a0", "\u2012", "\u2212", "\u2009"]),
    max_size=20,
)


@given(st.one_of(PHONEISH, st.from_regex(r"\+?[78]?9\d{9}", fullmatch=True)))
def test_phone_idempotent(raw: str) -> None:
    try:
        once = normalize.phone(raw, "RU")
    except Invalid:
        return
    assert normalize.phone(once, "RU") == once


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            PHONEISH,
            st.from_regex(r"\+(7|44|1|49|380|998|800) ?\d{6,12}", fullmatch=True),
            st.none(),
        ),
        max_size=30,
    )
)
def test_phones_vectorised_agree(raws: list[str | None]) -> None:
    found = normalize.phones(pl.Series(raws, dtype=pl.String), "RU")
    assert found.rows() == [_reference(lambda v: normalize.phone(v, "RU"), r) for r in raws]


def test_international_fast_path_is_exactly_libphonenumber() -> None:
    """The vectorised check takes only what phonenumbers would take, unchanged."""
    rng = random.Random(2024)
    raws: list[str] = []
    for cc in (7, 1, 44, 49, 33, 39, 380, 375, 998, 86, 91, 800, 882):
        for _ in range(400):
            digits = str(rng.randint(1, 9)) + "".join(
                rng.choices("0123456789", k=rng.randint(5, 12))
            )
            raws.append(f"+{cc}{digits}")
            raws.append(f"+{cc} ({digits[:3]}) {digits[3:6]}\u2013{digits[6:]}")
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                raws.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    fast = normalize._international(pl.Series(raws)).to_list()
    accepted = 0
    for raw, value in zip(raws, fast, strict=True):
        if value is not None:
            accepted += 1
            assert value == normalize.phone(raw, "ZZ"), raw
    assert accepted > len(raws) // 10  # the fast path does take most valid numbers


@pytest.mark.parametrize("region", ["RU", "GB", "DE", "US", "IT", "FR", "UZ", "BR", "KZ"])
def test_national_fast_path_is_exactly_libphonenumber(region: str) -> None:
    """Numbers without + read in a region: the vectorised reading is parse()'s."""
    rng = random.Random(region)
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert md is not None
    raws: list[str] = []
    for _ in range(1500):
        digits = "".join(rng.choices("0123456789", k=rng.randint(3, 14)))
        if rng.random() < 0.3 and md.national_prefix:
            digits = md.national_prefix + digits
        if rng.random() < 0.2:
            digits = f"{md.country_code}{digits}"
        if rng.random() < 0.3 and len(digits) > 6:
            digits = f"{digits[:1]}\u00a0({digits[1:4]}) {digits[4:7]}\u2212{digits[7:]}"
        raws.append(digits)
    fast = normalize._national(pl.Series(raws), region).to_list()
    for raw, value in zip(raws, fast, strict=True):
        if value is not None:
            assert value == normalize.phone(raw, region), raw
    if region not in ("BR", "KZ"):  # a rewriting prefix rule; another region's +7: left to it
        assert sum(v is not None for v in fast) > 20


def test_phones_pool_agrees_with_one_process() -> None:
    # "8 10 …" starts with Russia's international prefix: never on the fast path
    raws = [f"8 10 44 20 7946 {i:04d}" for i in range(60)] + ["abc", None]
    series = pl.Series(raws, dtype=pl.String)
    pooled = normalize.phones(series, "RU", parallel_min=10, workers=3)
    assert pooled.equals(normalize.phones(series, "RU", workers=1))
    assert pooled.get_column("value").null_count() == 2


def test_pool_shares_keep_the_order() -> None:
    """Three shares, two of them in spawned processes, joined back in input order."""
    values = [f"+44 20 7946 {i:04d}" for i in range(30)] + ["8 800 FLOWERS", "12"]
    pooled = normalize._phones_in_parallel(values, "RU", 3)
    assert pooled == normalize._phone_chunk(values, "RU")
    assert pooled[0] == ("+442079460000", None)
    assert pooled[-2] == (None, "phone number contains letters")


def test_runtime_check_samples_the_whole_column_not_its_head() -> None:
    """A fast path wrong everywhere but its first 200 answers is caught, and said without values.

    The check of the head alone, as it was, passed this column.
    """
    raws = [f"+7 916 {i // 100:03d}-{i % 100:02d}-{i % 97:02d}" for i in range(10_000)]
    right = [normalize.phone(r, "RU") for r in raws]
    planted = pl.Series(right[:200] + [f"+7926{v[5:]}" for v in right[200:]], dtype=pl.String)
    with pytest.raises(normalize.FastPathMismatch) as caught:
        normalize._checked(pl.Series(raws), planted, "RU")
    message = str(caught.value)
    assert "of 2000 sampled values" in message
    assert "+7" not in message and "916" not in message
    same = normalize._checked(pl.Series(raws), pl.Series(right, dtype=pl.String), "RU")
    assert same.to_list() == right


def test_no_private_phonenumbers_name_is_used() -> None:
    """Only phonenumbers' public API: a private function may change in any release."""
    source = Path(normalize.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and "phonenumbers" in ast.unparse(node.value)
    ]  # fmt: skip
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("phonenumbers")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == [] and imported == []
    assert "subprocess" not in source and "sched_getaffinity" not in source


# ---------------------------------------------------------------- profile ids, custom values


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 5f1a2b3c4d5e6f7a8b9c0d1e ", "5f1a2b3c4d5e6f7a8b9c0d1e"),
        ("not-hex-but-accepted", "not-hex-but-accepted"),
        ("00123", "00123"),
        ("tag-2, tag-1", "tag-2, tag-1"),  # the caller's order and spacing
        ("tag-1,tag-2", "tag-1,tag-2"),
        ("\u200bCRM-001\u00a0", "CRM-001"),
    ],
)
def test_text(raw: str, expected: str) -> None:
    assert normalize.text(raw) == expected
    assert normalize.texts(pl.Series([raw])).rows() == [(expected, None)]


@given(st.text())
def test_text_idempotent_and_vectorised(raw: str) -> None:
    expected = _reference(normalize.text, raw)
    if expected[0] is not None:
        assert normalize.text(expected[0]) == expected[0]
    assert normalize.texts(pl.Series([raw])).rows() == [expected]


# ---------------------------------------------------------------- received_at


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        (" 2024-05-01T10:00:00Z ", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00+03:00", datetime(2024, 5, 1, 7, tzinfo=UTC)),
        ("2024-05-01 10:30", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("01.05.2024", datetime(2024, 5, 1, tzinfo=UTC)),
        ("1.5.2024 9:30", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("01.05.2024 23:59:59", datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_received_at(raw: str, expected: datetime) -> None:
    assert normalize.received_at(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "31.02.2024", "05/01/2024", "2024-13-01", ""])
def test_received_at_rejected(raw: str) -> None:
    with pytest.raises(Invalid, match="received_at is not a date"):
        normalize.received_at(raw)
