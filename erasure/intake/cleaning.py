"""What every normalisation rule shares: cleaning, the refusal, and the bridge to a column.

A cell is cleaned the same way before any rule reads it (:func:`clean`:
invisible characters removed, whitespace trimmed, one explicit set for
Python and polars alike). A rule refuses a value by raising
:class:`Invalid` with a reason in plain words, and names a wrong character
by its kind (:func:`describe_char`), never the character itself.
:func:`by_reference` is how a vectorised rule hands the values its polars
expressions do not answer to the per-value reference, once per distinct
value, so that the two readings cannot drift apart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import polars as pl

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
ASCII_WS = " \t\n\r\v\f\x1c\x1d\x1e\x1f"
_INVISIBLE_TABLE = {ord(c): None for c in INVISIBLE}
_INVISIBLE_RE = "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in INVISIBLE) + "]"


Normalised = tuple[str | None, str | None]  # (normalised value, or the reason it was rejected)


class Invalid(ValueError):
    """A value that cannot be used; ``reason`` says why, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean(raw: str) -> str:
    """Invisible characters removed, whitespace trimmed from both ends."""
    return raw.translate(_INVISIBLE_TABLE).strip(WHITESPACE)


def describe_char(c: str) -> str:
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


# ---------------------------------------------------------------- vectorised
#
# Each returns a frame with ``value`` and ``reason`` (both Utf8), one row per
# input row: value set = valid; reason set = rejected; both null = empty cell.


def clean_expr(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all(_INVISIBLE_RE, "").str.strip_chars(WHITESPACE)


def cleaner(raw: pl.Series) -> pl.Expr:
    """:func:`clean_expr`, or plain ASCII trimming when the column is all ASCII."""
    if (raw.str.len_bytes() == raw.str.len_chars()).all():
        return pl.col("raw").str.strip_chars(ASCII_WS)
    return clean_expr(pl.col("raw"))


def by_reference(
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


def each_value(fn: Callable[[str], str]) -> Callable[[list[str]], list[Normalised]]:
    """A per-value rule over a list: its reason where it refuses (none for an empty cell)."""

    def run(values: list[str]) -> list[Normalised]:
        out: list[Normalised] = []
        for v in values:
            try:
                out.append((fn(v), None))
            except Invalid as exc:
                out.append((None, None if exc.reason == "empty" else exc.reason))
        return out

    return run
