"""Cells a spreadsheet would run as formulas, made inert.

The CSV and XLSX files erasure writes (rejects, reports) are opened by people
in Excel or LibreOffice, and a cell that begins with ``=``, ``+``, ``-`` or
``@`` may be taken for a formula (CSV injection). So may one that begins
with a tab, a carriage return or a line feed, or the full-width forms of the
four signs. Such a cell gets a leading apostrophe, which spreadsheets show as
text and do not evaluate; every other cell is left exactly as it is.

The same rule twice: :func:`neutralise` for one string, :func:`neutralise_expr`
for a polars column, and :func:`neutralise_frame` for every text column of a
frame.
"""

from __future__ import annotations

import polars as pl

FORMULA_START = "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"
PREFIX = "'"
_PATTERN = "^[" + "".join(f"\\x{{{ord(c):04X}}}" for c in FORMULA_START) + "]"


def neutralise(value: str) -> str:
    """``value`` with a leading apostrophe when it could start a formula."""
    return PREFIX + value if value[:1] and value[0] in FORMULA_START else value


def neutralise_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`neutralise` over a text column; nulls stay null."""
    return pl.when(expr.str.contains(_PATTERN)).then(pl.lit(PREFIX) + expr).otherwise(expr)


def neutralise_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text column neutralised; other columns untouched."""
    return frame.with_columns(
        neutralise_expr(pl.col(name)).alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )
