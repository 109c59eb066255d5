"""Cells as text, and the row values (db_id, resource_id, received_at) read from them."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from erasure.errors import InputUnusable
from erasure.intake import normalize
from erasure.intake.layout import shown

# ---------------------------------------------------------------- cells


def as_text(series: pl.Series, file: str) -> tuple[pl.Series, bool]:
    """A column as text, and whether it held integers (typed formats only)."""
    dtype = series.dtype
    name = shown(series.name)
    if dtype == pl.String:
        return series, False
    if dtype == pl.Null or isinstance(dtype, pl.Categorical | pl.Enum):
        return series.cast(pl.String), False
    if dtype.is_integer():
        return series.cast(pl.String), True
    if dtype.is_float():
        values = series.fill_nan(None)
        whole = values.is_null() | ((values == values.floor()) & (values.abs() < 2.0**53))
        if not whole.all():
            raise InputUnusable(
                f"{file}: column {name} holds fractional numbers;"
                " identifiers must be text or whole numbers"
            )
        return values.cast(pl.Int64).cast(pl.String), True
    raise InputUnusable(
        f"{file}: column {name} holds values of type {dtype}; expected text or whole numbers"
    )


def positive_ints(text: pl.Series, what: str, required: bool) -> pl.DataFrame:
    """Columns ``<what>`` (Int64), ``<what>_raw`` and ``<what>_reason``."""
    clean = normalize.texts(text).get_column("value")
    frame = pl.DataFrame({"raw": text, "clean": clean})
    ok = pl.col("clean").str.contains(r"^[0-9]{1,18}$")
    value = pl.when(ok).then(pl.col("clean").cast(pl.Int64))
    empty = pl.col("clean").is_null()
    reason = (
        pl.when(empty & required)
        .then(pl.lit(f"{what} is empty: the row is skipped"))
        .when(~empty & ~(ok & (value > 0)))
        .then(pl.lit(f"{what} is not a positive integer: the row is skipped"))
    )
    return frame.select(
        value.alias(what), pl.col("raw").alias(f"{what}_raw"), reason.alias(f"{what}_reason")
    )


def moments(series: pl.Series, file: str, timezone: str = "UTC") -> pl.DataFrame:
    """Columns ``received_at`` (UTC), ``received_at_raw`` and ``received_at_reason``.

    A date or time without an offset is read in ``timezone`` ([input] timezone).
    """
    utc = pl.Datetime("us", "UTC")
    if isinstance(series.dtype, pl.Date | pl.Datetime):
        moments = series.cast(pl.Datetime("us")) if series.dtype == pl.Date else series
        tz = getattr(moments.dtype, "time_zone", None)
        moments = moments.dt.replace_time_zone(timezone) if tz is None else moments
        return pl.DataFrame(
            {
                "received_at": moments.dt.convert_time_zone("UTC").cast(utc),
                "received_at_raw": series.cast(pl.String),
                "received_at_reason": pl.repeat(None, series.len(), dtype=pl.String, eager=True),
            }
        )
    text, _ = as_text(series, file)
    distinct = text.drop_nulls().unique().to_list()
    parsed: list[datetime | None] = []
    bad: list[bool] = []
    for value in distinct:
        try:
            parsed.append(
                normalize.received_at(value, timezone) if normalize.clean(value) else None
            )
            bad.append(False)
        except normalize.Invalid:
            parsed.append(None)
            bad.append(True)
    table = pl.DataFrame(
        {"raw": distinct, "received_at": parsed, "bad": bad},
        schema={"raw": pl.String, "received_at": utc, "bad": pl.Boolean},
    )
    reason = "received_at is not a date: the row's identifiers are kept, without a deadline"
    return (
        text.rename("raw")
        .to_frame()
        .join(table, on="raw", how="left", maintain_order="left")
        .select(
            "received_at",
            received_at_raw="raw",
            received_at_reason=pl.when("bad").then(pl.lit(reason)),
        )
    )
