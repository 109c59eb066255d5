"""The phone rule over a column: :func:`phones`, a vectorised reading checked by a sample.

Most cells are read with polars over libphonenumber's own metadata
(:func:`_fast`); a random sample of those answers is read again by the
reference :func:`erasure.intake.phone_rule.phone` on every call
(:func:`_checked`), and the cells the fast path leaves go to the reference
once per distinct value. Only ``phonenumbers``' public API is used: a
private function may change in any release.
"""

from __future__ import annotations

import secrets

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from erasure.intake.cleaning import Normalised, by_reference, cleaner
from erasure.intake.phone_rule import (
    MAX_WORKERS,
    PARALLEL_MIN,
    PHONE_INPUT_MAX,
    phone_chunk,
    phones_in_parallel,
    usable_cpus,
)

# Fast-path answers re-read by phonenumbers on every call, drawn at random (not the head):
# about 0.1 s per 2,000 on one core, against ~2 s for a million rows through the fast path.
CHECK_SAMPLE = 2_000


class FastPathMismatch(RuntimeError):
    """The vectorised phone reading disagreed with ``phonenumbers``: a bug, not bad input.

    Raised before anything is sent, so that a wrong reading never becomes a
    delete for the wrong person. The message counts and never quotes values.
    """


def phones(
    raw: pl.Series, region: str, *, parallel_min: int = PARALLEL_MIN, workers: int | None = None
) -> pl.DataFrame:
    """:func:`~erasure.intake.phone_rule.phone` over a column.

    Numbers written as digits and plain separators (:data:`_SHAPE`) are read
    with polars (:func:`_fast`): ``+`` numbers of any country and numbers
    without ``+`` in ``region``, redoing what ``phonenumbers.parse`` and
    ``is_valid_number`` do with libphonenumber's own metadata. A random
    sample of those answers is read again by ``phonenumbers`` on every call
    (:func:`_checked`); ``tests/test_normalize.py`` compares the whole path
    with ``phonenumbers`` over 50,000 generated cells (a million with
    ``ERASURE_TEST_LONG=1``). The rest go to ``phonenumbers`` once per
    distinct value, in ``workers`` processes (default: the usable CPUs, at
    most :data:`MAX_WORKERS`) when there are ``parallel_min`` or more.
    """
    done = _fast(raw, region)

    def slow(values: list[str]) -> list[Normalised]:
        count = min(usable_cpus(), MAX_WORKERS) if workers is None else workers
        if len(values) < parallel_min or count < 2:
            return phone_chunk(values, region)
        return phones_in_parallel(values, region, count)

    return by_reference(raw, done, slow)


def _fast(raw: pl.Series, region: str) -> pl.Series:
    """E.164 where the vectorised reading answers (checked by a sample), else null."""
    candidates = _candidates(raw)
    done = _international(raw, candidates)
    return done.zip_with(done.is_not_null(), _national(raw, region, candidates))


def _valid_for(nsn: pl.Expr, md: PhoneMetadata, length: int) -> pl.Expr:
    """libphonenumber's ``_number_type_helper(nsn, md) != UNKNOWN`` for one length.

    A type matches when the length is one of its possible lengths (or it
    lists none) and its pattern matches in full; the general description must
    match too. The types' patterns are joined into one regular expression.
    """
    general = md.general_desc
    if general is None or not general.national_number_pattern:
        return pl.lit(False)
    if general.possible_length and length not in general.possible_length:
        return pl.lit(False)
    kinds = [
        md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
        md.pager, md.uan, md.voicemail, md.fixed_line,
    ]  # fmt: skip
    if not md.same_mobile_and_fixed_line_pattern:
        kinds.append(md.mobile)
    patterns = [
        f"(?:{d.national_number_pattern})"
        for d in kinds
        if d is not None
        and d.national_number_pattern
        and (not d.possible_length or length in d.possible_length)
    ]
    if not patterns:
        return pl.lit(False)
    return nsn.str.contains(f"^(?:{general.national_number_pattern})$") & nsn.str.contains(
        "^(?:" + "|".join(patterns) + ")$"
    )


def _cc_valid(cc: int, length: int, nsn: pl.Expr) -> pl.Expr:
    """``is_valid_number`` for national numbers of one country code and length."""
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    main = PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
    if main is None:
        return pl.lit(False)
    if len(regions) == 1:
        return _valid_for(nsn, main, length)
    valid: pl.Expr = pl.lit(False)  # _region_code_for_number_from_list: the first region that fits
    for region in reversed(regions):
        md = PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        if md.leading_digits is not None:
            cond = nsn.str.contains(f"^(?:{md.leading_digits})")
            valid = pl.when(cond).then(_valid_for(nsn, md, length)).otherwise(valid)
        else:
            valid = _valid_for(nsn, md, length) | valid
    return valid


def _prefix_match(md: PhoneMetadata, nsn: pl.Expr) -> pl.Expr:
    """Whether the national prefix pattern matches at the start."""
    npfp = md.national_prefix_for_parsing
    return nsn.str.contains(f"^(?:{npfp})") if npfp else pl.lit(False)


def _e164_where_valid(frame: pl.DataFrame, size: int, guard: bool) -> pl.Series:
    """``+cc nsn`` where ``is_valid_number`` holds, else null; ``size`` values.

    ``frame`` has ``i`` (the row), ``cc`` and ``nsn`` (null: not a candidate).
    With ``guard``, numbers whose national part starts with the national
    prefix are left out: ``parse`` might have stripped it. The rules depend
    on the country code and the length: a few pairs are checked over the
    whole frame at once, many one group at a time.
    """
    nsn, cc, length = pl.col("nsn"), pl.col("cc"), pl.col("nsn").str.len_bytes()
    frame = frame.filter(cc.is_not_null() & nsn.is_not_null())
    pairs = frame.select(cc, length=length).unique().rows()

    def valid(code: int, n: int) -> pl.Expr:
        rule = _cc_valid(code, n, nsn)
        if guard:
            main = COUNTRY_CODE_TO_REGION_CODE[code][0]
            md = PhoneMetadata.metadata_for_region_or_calling_code(code, main)
            rule = rule & ~_prefix_match(md, nsn) if md is not None else pl.lit(False)
        return rule

    e164 = pl.lit("+") + cc + nsn
    if len(pairs) <= 4:
        rule: pl.Expr = pl.lit(False)
        for code, n in pairs:
            rule = pl.when((cc == code) & (length == n)).then(valid(int(code), n)).otherwise(rule)
        parts = [frame.lazy().select("i", value=pl.when(rule).then(e164))]
    else:
        parts = [
            part.lazy().select("i", value=pl.when(valid(int(str(code)), int(str(n)))).then(e164))
            for (code, n), part in frame.with_columns(length=length).group_by("cc", "length")
        ]
    found = pl.concat([p.collect(engine="streaming") for p in parts])
    done = pl.repeat(None, size, dtype=pl.String, eager=True).rename("value")
    return done.scatter(found.get_column("i"), found.get_column("value")) if found.height else done


def _checked(
    raw: pl.Series, done: pl.Series, region: str, *, sample: int = CHECK_SAMPLE
) -> pl.Series:
    """``done``, once ``sample`` of its answers drawn at random agree with ``phonenumbers``.

    Drawn anew on every call from the whole column, not its head, so that
    no part of a file is never looked at. A disagreement is a bug in this
    module (the tests compare the fast path with ``phonenumbers`` over
    generated numbers): it raises :class:`FastPathMismatch` rather than
    send a delete for the wrong person.
    """
    rows = done.is_not_null().arg_true()
    if rows.len() > sample:
        rows = rows.sample(sample, seed=secrets.randbits(32))
    expected = [v for v, _ in phone_chunk(raw.gather(rows).to_list(), region)]
    wrong = sum(a != b for a, b in zip(expected, done.gather(rows).to_list(), strict=True))
    if wrong:
        raise FastPathMismatch(
            f"the vectorised phone reading disagrees with phonenumbers on {wrong} of"
            f" {rows.len()} sampled values (region {region}): a bug in erasure.intake.phone_column;"
            " nothing was sent"
        )
    return done


# "+" or not, then digits and separators libphonenumber drops: space, no-break space,
# ( ) . and the dashes and minus sign of word processors.
_SHAPE = r"^\+?[0-9 ().\-\x{00A0}\x{2010}-\x{2015}\x{2212}]+$"


def _candidates(raw: pl.Series) -> pl.DataFrame:
    """Per row: ``i``, ``plus``, and ``digits`` when the cell has :data:`_SHAPE`
    and at most 250 characters (else null)."""
    value = pl.col("value")
    shaped = value.str.contains(_SHAPE) & (value.str.len_chars() <= PHONE_INPUT_MAX)
    return (
        raw.rename("raw")
        .to_frame()
        .lazy()
        .with_columns(value=cleaner(raw))
        .select(
            plus=value.str.starts_with("+"),
            digits=pl.when(shaped).then(value.str.replace_all(r"[^0-9]", "")),
        )
        .with_row_index("i")
        .collect(engine="streaming")
    )


def _international(raw: pl.Series, candidates: pl.DataFrame | None = None) -> pl.Series:
    """E.164 values of ``+``-numbers that libphonenumber takes unchanged, else null.

    For ``+`` followed by digits and separators, ``parse``
    drops the separators, takes the country code, and strips a national
    prefix only where the main region's prefix pattern matches at the start
    of the rest; ``is_valid_number`` then matches the national number
    against the region's patterns and possible lengths. Those steps are
    redone here over the whole column; numbers where a prefix could be
    stripped are left to ``phonenumbers``. A sample is checked against it.
    """
    codes = {str(c) for c in COUNTRY_CODE_TO_REGION_CODE}
    d = pl.col("digits")
    cc = (
        pl.when(d.str.slice(0, 1).is_in(codes)).then(d.str.slice(0, 1))
        .when(d.str.slice(0, 2).is_in(codes)).then(d.str.slice(0, 2))
        .when(d.str.slice(0, 3).is_in(codes)).then(d.str.slice(0, 3))
    )  # fmt: skip
    frame = (
        (_candidates(raw) if candidates is None else candidates)
        .lazy()
        .filter(pl.col("plus") & d.is_not_null())
        .with_columns(cc=cc)
        .with_columns(nsn=d.str.slice(pl.col("cc").str.len_bytes()))
        .collect(engine="streaming")
    )
    return _checked(raw, _e164_where_valid(frame, raw.len(), guard=True), "ZZ")


def _national(raw: pl.Series, region: str, candidates: pl.DataFrame | None = None) -> pl.Series:
    """E.164 values of numbers without ``+``, read in ``region`` as libphonenumber would.

    ``parse`` on digits and separators (at least three digits): an
    international dialling prefix (Russia's ``810``) is left to
    ``phonenumbers``; a leading country code is dropped when the number is
    not possible with it and is without it, or is too long with it; then
    the national prefix (Russia's ``8``) is dropped when what stays is still
    a possible length. Redone here for regions whose national prefix needs
    no rewriting (most, Russia among them); a sample is checked.
    """
    md = PhoneMetadata.metadata_for_region(region)
    desc = None if md is None else md.general_desc
    if (
        md is None
        or md.country_code is None
        or md.national_prefix_transform_rule
        or phonenumbers.region_code_for_country_code(md.country_code) != region
        or desc is None
        or not desc.national_number_pattern
    ):
        return pl.repeat(None, raw.len(), dtype=pl.String, eager=True).rename("value")
    # parse() tests a national number's length against the region's possible
    # lengths; the public is_possible_number_with_reason does the same test
    # for a number of that length (the region is its code's main region).
    results = phonenumbers.ValidationResult
    lengths = {
        n: phonenumbers.is_possible_number_with_reason(
            PhoneNumber(country_code=md.country_code, national_number=10 ** (n - 1))
        )
        for n in range(1, PHONE_INPUT_MAX + 1)
    }  # an empty number (n = 0) is too short everywhere: neither kept nor too long
    too_long = [n for n, r in lengths.items() if r == results.TOO_LONG]
    keeps = [
        n
        for n, r in lengths.items()
        if r not in (results.TOO_SHORT, results.IS_POSSIBLE_LOCAL_ONLY, results.INVALID_LENGTH)
    ]
    general = f"^(?:{desc.national_number_pattern})$"
    code = str(md.country_code)
    npfp = md.national_prefix_for_parsing

    def strip(number: pl.Expr) -> pl.Expr:  # _maybe_strip_national_prefix_carrier_code
        if not npfp:
            return number
        prefix = number.str.extract(f"^((?:{npfp}))", 1)
        rest = number.str.slice(prefix.str.len_bytes())
        kept = prefix.is_null() | (number.str.contains(general) & ~rest.str.contains(general))
        return pl.when(kept).then(number).otherwise(rest)

    d = pl.col("digits")
    idd = md.international_prefix
    after_cc = strip(d.str.slice(len(code)))
    take_cc = d.str.starts_with(code) & (
        (~d.str.contains(general) & after_cc.str.contains(general))
        | d.str.len_bytes().is_in(too_long)
    )
    first = pl.col("first")
    second = strip(first)
    frame = (
        (_candidates(raw) if candidates is None else candidates)
        .lazy()
        .filter(~pl.col("plus") & (d.str.len_bytes() >= 3))
        .filter(~d.str.contains(f"^(?:{idd})") if idd else pl.lit(True))
        .with_columns(first=pl.when(take_cc).then(after_cc).otherwise(d))
        .select(
            "i",
            cc=pl.lit(code),
            nsn=pl.when(second.str.len_bytes().is_in(keeps)).then(second).otherwise(first),
        )
        .filter(pl.col("nsn").str.len_bytes().is_between(2, 17))
        .collect(engine="streaming")
    )
    return _checked(raw, _e164_where_valid(frame, raw.len(), guard=False), region)
