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

This module is the one import for callers: it holds the field-value rules
(profile ids and custom values, :func:`received_at`) and names the others,
one concept to a module. :mod:`.cleaning` is what every rule shares (the
cleaning, :class:`Invalid`, the bridge from a column to its reference);
:mod:`.email_rule` keeps the email rule beside its vectorised twin;
:mod:`.phone_rule` is the phone reference (``phonenumbers``, one value or
many in worker processes) and :mod:`.phone_column` the vectorised reading
over libphonenumber's metadata, which checks a random sample of its
answers against the reference on every call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import polars as pl

from erasure.intake.cleaning import INVISIBLE, WHITESPACE, Invalid, clean, clean_expr
from erasure.intake.email_rule import EMAIL_MAX, email, emails
from erasure.intake.phone_column import FastPathMismatch, phones
from erasure.intake.phone_rule import PHONE_INPUT_MAX, phone

__all__ = [
    "EMAIL_MAX",
    "INVISIBLE",
    "PHONE_INPUT_MAX",
    "WHITESPACE",
    "FastPathMismatch",
    "Invalid",
    "clean",
    "email",
    "emails",
    "phone",
    "phones",
    "received_at",
    "text",
    "texts",
]


def text(raw: str) -> str:
    """A profile id or custom field value: cleaned, otherwise as written.

    Tag lists (``"tag-1, tag-2"``) keep their order and spacing: Altcraft
    compares the text, so only the caller knows the form it holds.
    """
    value = clean(raw)
    if not value:
        raise Invalid("empty")
    return value


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


def texts(raw: pl.Series) -> pl.DataFrame:
    """:func:`text` over a column."""
    value = clean_expr(pl.col("raw"))
    return (
        raw.rename("raw")
        .to_frame()
        .select(value=pl.when(value != "").then(value), reason=pl.lit(None, pl.String))
    )
