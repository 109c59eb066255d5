"""Normalisation: the rules that turn a raw cell into the text that is sent and keyed.

Every rule exists twice. A pure per-value function (:func:`email`,
:func:`phone`, :func:`text`, :func:`received_at`) is the reference: short,
readable, tested by example. A vectorised version (:func:`emails`,
:func:`phones`, :func:`texts`) applies the same rule to a whole polars column;
it answers the common case with polars expressions and hands every other
distinct value to the reference function, so the two cannot drift apart
(tests compare them on generated text).

A rule returns the normalised value or raises :class:`Invalid` with a reason
a compliance officer understands. Rules are idempotent: a normalised value
normalises to itself. Nothing here guesses: a value is trimmed, cleaned of
invisible characters and lower-cased (emails), or parsed by libphonenumber
(phones); anything that could turn one person's identifier into another's
(look-alike letters, letters in a phone number, two numbers in one cell) is
rejected for a person to fix. Changing any rule means bumping
:data:`erasure.keys.NORMALISATION_VERSION`.

Over 400 lines on purpose: each rule sits beside its vectorised twin (the
phone fast path over libphonenumber's metadata is most of it), so that a
change to one is read next to the other; split, the pairs would drift.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import polars as pl
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

# Characters that never belong in an identifier and arrive by copy and paste:
# zero-width space/joiners, word joiner, BOM, soft hyphen, bidi marks.
INVISIBLE = (
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)
# Whitespace trimmed from both ends (one explicit set, the same for Python and polars).
WHITESPACE = (
    " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_WS = " \t\n\r\v\f\x1c\x1d\x1e\x1f"
_INVISIBLE_TABLE = {ord(c): None for c in INVISIBLE}
_INVISIBLE_RE = "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in INVISIBLE) + "]"

EMAIL_MAX = 254  # characters, RFC 5321 path limit
LOCAL_MAX = 64  # characters before the @
PHONE_INPUT_MAX = 250  # characters; libphonenumber refuses longer input
PARALLEL_MIN = 20_000  # distinct phone values left to phonenumbers before workers pay off
MAX_WORKERS = 8  # processes at most: past that, reading and joining the column dominates
# Fast-path answers re-read by phonenumbers on every call, drawn at random (not the head):
# about 0.1 s per 2,000 on one core, against ~2 s for a million rows through the fast path.
CHECK_SAMPLE = 2_000

_ATEXT = "a-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
EMAIL_ASCII = rf"^{_LOCAL}@(?:{_LABEL}\.)+{_TLD}$"
_EMAIL_ASCII_RE = re.compile(EMAIL_ASCII)
_TLD_RE = re.compile(_TLD)

# Cyrillic and Greek letters that look like Latin ones.
_LOOKALIKES = frozenset("асеорхуіјѕԁԛԝһӏοαικνρτυ")
_PHONE_ALLOWED = frozenset("+＋-‐‑‒–—―−()[].")
_PHONE_SEPARATORS = frozenset(",;/|\\")


Normalised = tuple[str | None, str | None]  # (normalised value, or the reason it was rejected)


class Invalid(ValueError):
    """A value that cannot be used; ``reason`` says why, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FastPathMismatch(RuntimeError):
    """The vectorised phone reading disagreed with ``phonenumbers``: a bug, not bad input.

    Raised before anything is sent, so that a wrong reading never becomes a
    delete for the wrong person. The message counts and never quotes values.
    """


# ---------------------------------------------------------------- per value


def clean(raw: str) -> str:
    """Invisible characters removed, whitespace trimmed from both ends."""
    return raw.translate(_INVISIBLE_TABLE).strip(WHITESPACE)


def text(raw: str) -> str:
    """A profile id or custom field value: cleaned, otherwise as written.

    Tag lists (``"tag-1, tag-2"``) keep their order and spacing: Altcraft
    compares the text, so only the caller knows the form it holds.
    """
    value = clean(raw)
    if not value:
        raise Invalid("empty")
    return value


def email(raw: str) -> str:
    """An email address: cleaned and lower-cased, then checked."""
    if len(raw) > 4 * EMAIL_MAX:  # before any work on a huge cell
        raise Invalid(f"not an email address: longer than {EMAIL_MAX} characters")
    value = clean(raw).lower()
    if not value:
        raise Invalid("empty")
    if len(value) > EMAIL_MAX:
        raise Invalid(f"not an email address: longer than {EMAIL_MAX} characters")
    if any(c.isspace() for c in value):
        raise Invalid("not an email address: contains a space")
    if value.isascii() and _EMAIL_ASCII_RE.match(value) and value.index("@") <= LOCAL_MAX:
        return value
    _email_reason(value)
    if value.isascii():  # pragma: no cover - _email_reason mirrors the pattern
        raise Invalid("not an email address")
    return value  # internationalised: each part in one script, in normal form


def _email_reason(value: str) -> None:
    """Raise :class:`Invalid` with the first problem found; return if none."""
    at = value.count("@")
    if at == 0:
        raise Invalid("not an email address: no @")
    if at > 1:
        raise Invalid("not an email address: more than one @")
    local, domain = value.split("@")
    if not local:
        raise Invalid("not an email address: nothing before the @")
    if not domain:
        raise Invalid("not an email address: nothing after the @")
    if len(local) > LOCAL_MAX:
        raise Invalid(f"not an email address: more than {LOCAL_MAX} characters before the @")
    if not value.isascii() and unicodedata.normalize("NFKC", value) != value:
        odd = next((c for c in value if unicodedata.normalize("NFKC", c) != c), None)
        raise Invalid(
            "not an email address: holds a full-width, styled or decomposed character"
            + (f" ({_show(odd)})" if odd else "")
            + "; type it as plain text"
        )
    parts = [local, *domain.split(".")]
    _lookalikes(parts)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise Invalid("not an email address: a misplaced dot before the @")
    for c in local:
        if not ((c.isascii() and (c.isalnum() or c in _ATEXT)) or _intl_letter(c) or c == "."):
            raise Invalid(f"not an email address: {_show(c)} is not allowed before the @")
    if "." not in domain:
        raise Invalid("not an email address: the domain has no dot")
    labels = domain.split(".")
    for label in labels:
        if not label:
            raise Invalid("not an email address: the domain has an empty part (two dots?)")
        if label.startswith("-") or label.endswith("-") or len(label) > 63:
            raise Invalid("not an email address: a domain part starts or ends with a hyphen")
        for c in label:
            if not ((c.isascii() and (c.isalnum() or c == "-")) or _intl_letter(c)):
                raise Invalid(f"not an email address: {_show(c)} is not allowed in the domain")
    tld = labels[-1]
    if tld.isascii() and not _TLD_RE.fullmatch(tld):
        raise Invalid("not an email address: the top-level domain is not letters")


def _intl_letter(c: str) -> bool:
    return not c.isascii() and unicodedata.category(c)[0] in "LNM"


def _lookalikes(parts: list[str]) -> None:
    """Reject Latin mixed with other scripts in one part: the classic look-alike trap."""
    latin_parts = 0
    for part in parts:
        scripts = {_script(c) for c in part if c.isalpha() or not c.isascii()}
        if "LATIN" in scripts and len(scripts) > 1:
            raise Invalid(
                "email mixes Latin letters with Cyrillic, Greek or other characters in one part"
                " (a look-alike character, such as Cyrillic а for Latin a?)"
            )
        latin_parts += scripts == {"LATIN"}
    for part in parts:
        letters = [c for c in part if c.isalpha()]
        if latin_parts and letters and all(c in _LOOKALIKES for c in letters):
            raise Invalid(
                "email has a part written in Cyrillic or Greek letters that look like Latin ones"
            )


def _script(c: str) -> str:
    if c.isascii():
        return "LATIN"
    return unicodedata.name(c, "UNKNOWN").split(" ")[0]


def _show(c: str) -> str:
    """The kind of character ``c`` is, in words: never the character itself (it is the cell's).

    ASCII punctuation is named ("the comma character"): it says what to fix
    and tells nothing of the person; a letter or digit is only its kind.
    """
    if c == " ":
        return "a space"
    if c.isspace():
        return "a blank character"
    if not c.isprintable():
        return "a control or invisible character"
    if c.isascii() and not c.isalnum():
        return f"the {unicodedata.name(c, 'punctuation').lower()} character"
    if c.isalpha():
        return "a letter" if c.isascii() else "a letter outside ASCII"
    if c.isdigit():
        return "a digit" if c.isascii() else "a digit outside ASCII"
    return "a symbol outside ASCII"


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "phone number has an unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "phone number is too short",
    NumberParseException.TOO_SHORT_NSN: "phone number is too short",
    NumberParseException.TOO_LONG: "phone number is too long",
}


def phone(raw: str, region: str) -> str:
    """A phone number in E.164; without a country code it is read in ``region``."""
    if len(raw) > 4 * PHONE_INPUT_MAX:
        raise Invalid("phone number is too long")
    value = clean(raw)
    if not value:
        raise Invalid("empty")
    if len(value) > PHONE_INPUT_MAX:
        raise Invalid("phone number is too long")
    for c in value:
        if c.isalpha():
            raise Invalid("phone number contains letters")
        if c in _PHONE_SEPARATORS:
            raise Invalid(f"phone cell holds {_show(c)}: one number per cell")
        if not (c.isdigit() or c.isspace() or c in _PHONE_ALLOWED):
            raise Invalid(f"phone number contains {_show(c)}")
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException as exc:
        raise Invalid(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_valid_number(number):
        if number.country_code == phonenumbers.country_code_for_region(region):
            raise Invalid(f"phone number is not valid for region {region}")
        raise Invalid(f"phone number is not valid for country code +{number.country_code}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def received_at(raw: str, timezone: str = "UTC") -> datetime:
    """A moment in UTC: ISO 8601 or ``DD.MM.YYYY[ HH:MM[:SS]]``.

    A date alone means midnight in ``timezone`` (an IANA name, [input]
    timezone); a time without an offset is read there too.
    """
    value = raw.strip(WHITESPACE)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        m = _DOTTED.fullmatch(value)
        if m is None:
            raise Invalid("received_at is not a date") from None
        day, month, year, hh, mm, ss = (int(g) if g else 0 for g in m.groups())
        try:
            moment = datetime(year, month, day, hh, mm, ss)
        except ValueError:
            raise Invalid("received_at is not a date") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    return moment.astimezone(UTC)


# ---------------------------------------------------------------- vectorised
#
# Each returns a frame with ``value`` and ``reason`` (both Utf8), one row per
# input row: value set = valid; reason set = rejected; both null = empty cell.


def _clean_expr(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all(_INVISIBLE_RE, "").str.strip_chars(WHITESPACE)


def _cleaner(raw: pl.Series) -> pl.Expr:
    """:func:`_clean_expr`, or plain ASCII trimming when the column is all ASCII."""
    if (raw.str.len_bytes() == raw.str.len_chars()).all():
        return pl.col("raw").str.strip_chars(_ASCII_WS)
    return _clean_expr(pl.col("raw"))


def texts(raw: pl.Series) -> pl.DataFrame:
    """:func:`text` over a column."""
    value = _clean_expr(pl.col("raw"))
    return (
        raw.rename("raw")
        .to_frame()
        .select(value=pl.when(value != "").then(value), reason=pl.lit(None, pl.String))
    )


def _by_reference(
    raw: pl.Series, done: pl.Series, fn: Callable[[list[str]], list[Normalised]]
) -> pl.DataFrame:
    """Values where ``done`` is null, computed by ``fn`` once per distinct value."""
    todo = (done.is_null() & raw.is_not_null()).arg_true()
    reasons = pl.repeat(None, raw.len(), dtype=pl.String, eager=True)
    if todo.len():
        pending = raw.gather(todo).rename("raw")
        distinct = pending.unique(maintain_order=True)
        results = fn(distinct.to_list())
        table = pl.DataFrame(
            {"raw": distinct, "v": [v for v, _ in results], "reason": [r for _, r in results]},
            schema={"raw": pl.String, "v": pl.String, "reason": pl.String},
        )
        found = pending.to_frame().join(table, on="raw", how="left", maintain_order="left")
        done = done.clone().scatter(todo, found.get_column("v"))
        reasons = reasons.scatter(todo, found.get_column("reason"))
    return pl.DataFrame({"value": done, "reason": reasons})


def _each(fn: Callable[[str], str]) -> Callable[[list[str]], list[Normalised]]:
    def run(values: list[str]) -> list[Normalised]:
        out: list[Normalised] = []
        for v in values:
            try:
                out.append((fn(v), None))
            except Invalid as exc:
                out.append((None, None if exc.reason == "empty" else exc.reason))
        return out

    return run


def emails(raw: pl.Series) -> pl.DataFrame:
    """:func:`email` over a column; plain ASCII addresses never leave polars."""
    fast = pl.col("fast")
    ok = (
        fast.str.contains(EMAIL_ASCII)
        & (fast.str.len_bytes() <= EMAIL_MAX)
        & (fast.str.find("@", literal=True) <= LOCAL_MAX)
        & (pl.col("raw").str.len_bytes() == pl.col("raw").str.len_chars())  # ASCII
    )
    done = (
        raw.rename("raw")
        .to_frame()
        .lazy()
        .with_columns(fast=pl.col("raw").str.strip_chars(_ASCII_WS).str.to_lowercase())
        .select(pl.when(ok).then(fast))
        .collect(engine="streaming")
        .to_series()
    )
    return _by_reference(raw, done, _each(email))


def phones(
    raw: pl.Series, region: str, *, parallel_min: int = PARALLEL_MIN, workers: int | None = None
) -> pl.DataFrame:
    """:func:`phone` over a column.

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
            return _phone_chunk(values, region)
        return _phones_in_parallel(values, region, count)

    return _by_reference(raw, done, slow)


def usable_cpus() -> int:
    """CPUs this process may run on: ``os.process_cpu_count`` (3.13+), else ``os.cpu_count``."""
    counter: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return counter() or 1


def _fast(raw: pl.Series, region: str) -> pl.Series:
    """E.164 where the vectorised reading answers (checked by a sample), else null."""
    candidates = _candidates(raw)
    done = _international(raw, candidates)
    return done.zip_with(done.is_not_null(), _national(raw, region, candidates))


def _phone_chunk(values: list[str], region: str) -> list[Normalised]:
    return _each(lambda v: phone(v, region))(values)


def _phones_in_parallel(values: list[str], region: str, workers: int) -> list[Normalised]:
    """:func:`phone` over ``values``: one share here, the others in worker processes.

    The pool spawns fresh interpreters (the same start method on every OS)
    rather than forking: a fork copies polars' busy thread pool, whose locks
    the child may inherit held. Spawned workers import the main module
    under another name, so an ``if __name__ == "__main__"`` guard (as in
    ``python -m erasure``) keeps them from running the command again. When
    processes cannot be started or one dies, its share is done here: the
    answer is the same, only slower.
    """
    size = -(-len(values) // workers)
    shares = [values[i : i + size] for i in range(0, len(values), size)]
    if len(shares) < 2:
        return _phone_chunk(values, region)
    # here, not at the top: most inputs never start a pool, and loading it
    # is 20 ms of every command's start
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(len(shares) - 1, mp_context=context) as pool:
            others = [pool.submit(_phone_chunk, share, region) for share in shares[1:]]
            found = _phone_chunk(shares[0], region)
            for future, share in zip(others, shares[1:], strict=True):
                try:
                    found.extend(future.result())
                except BrokenProcessPool:
                    found.extend(_phone_chunk(share, region))
    except OSError:  # no processes here (a sandbox, a limit): one process does it all
        return _phone_chunk(values, region)
    return found


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
    expected = [v for v, _ in _phone_chunk(raw.gather(rows).to_list(), region)]
    wrong = sum(a != b for a, b in zip(expected, done.gather(rows).to_list(), strict=True))
    if wrong:
        raise FastPathMismatch(
            f"the vectorised phone reading disagrees with phonenumbers on {wrong} of"
            f" {rows.len()} sampled values (region {region}): a bug in erasure.intake.normalize;"
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
        .with_columns(value=_cleaner(raw))
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
