"""The email rule: :func:`email` for one value, :func:`emails` for a column, side by side.

An address is cleaned and lower-cased, then checked: plain ASCII addresses
against one pattern (:data:`EMAIL_ASCII`, which :func:`emails` applies in
polars), anything else by :func:`_email_reason`, which names the first
problem found. Internationalised addresses are kept when each part is in
one script and in normal form; look-alike letters (Cyrillic а for Latin a)
are refused for a person to fix.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

from erasure.intake.cleaning import (
    ASCII_WS,
    Invalid,
    by_reference,
    clean,
    describe_char,
    each_value,
)

EMAIL_MAX = 254  # characters, RFC 5321 path limit
LOCAL_MAX = 64  # characters before the @

_ATEXT = "a-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
EMAIL_ASCII = rf"^{_LOCAL}@(?:{_LABEL}\.)+{_TLD}$"
_EMAIL_ASCII_RE = re.compile(EMAIL_ASCII)
_TLD_RE = re.compile(_TLD)

# Cyrillic and Greek letters that look like Latin ones.
_LOOKALIKES = frozenset("асеорхуіјѕԁԛԝһӏοαικνρτυ")


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
            + (f" ({describe_char(odd)})" if odd else "")
            + "; type it as plain text"
        )
    parts = [local, *domain.split(".")]
    _lookalikes(parts)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise Invalid("not an email address: a misplaced dot before the @")
    for c in local:
        if not ((c.isascii() and (c.isalnum() or c in _ATEXT)) or _intl_letter(c) or c == "."):
            raise Invalid(f"not an email address: {describe_char(c)} is not allowed before the @")
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
                raise Invalid(
                    f"not an email address: {describe_char(c)} is not allowed in the domain"
                )
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
        .with_columns(fast=pl.col("raw").str.strip_chars(ASCII_WS).str.to_lowercase())
        .select(pl.when(ok).then(fast))
        .collect(engine="streaming")
        .to_series()
    )
    return by_reference(raw, done, each_value(email))
