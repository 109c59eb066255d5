"""A request's received_at: the earliest usable one among its rows (issue 21).

A request may span several rows (several identifiers, a repeated ticket),
and some of them may have no usable identifier at all. Its received date is
the earliest usable ``received_at`` of any of its rows, identifier or not:
its pairs all carry it, and so do its invalid records (so that a request
with no usable identifier still has a deadline). Rows that disagree are a
conflict, logged by request id (never a value). A request whose only
received dates are unusable has an unknown deadline: each such row is an
invalid record (``received_at_invalid``), also where the row had no usable
identifier, so that the deadline it lacks is reported.

Rows without a request id are their own requests: they keep their own date.
Pure: polars frames in, frames out.
"""

from __future__ import annotations

import polars as pl

__all__ = ["RECEIVED_SCHEMA", "apply", "conflicts_logged", "earliest", "undated"]

RECEIVED_SCHEMA = {
    "request_id": pl.String,
    "received_at": pl.Datetime("us", "UTC"),  # the earliest usable (null: none usable)
    "dates": pl.UInt32,  # distinct usable received dates among its rows (>1: a conflict)
}


def earliest(rows: pl.DataFrame) -> pl.DataFrame:
    """Per request id: its earliest usable received_at and how many distinct ones it had.

    ``rows`` is the intake's row frame (``request_id``, ``received_at``).
    """
    named = rows.lazy().filter(pl.col("request_id").is_not_null())
    found = named.group_by("request_id", maintain_order=True).agg(
        pl.col("received_at").min().alias("received_at"),
        pl.col("received_at").drop_nulls().n_unique().alias("dates"),
    )
    return found.collect().cast(RECEIVED_SCHEMA)  # type: ignore[arg-type]


def undated(rows: pl.DataFrame, found: pl.DataFrame) -> pl.Series:
    """Per input row: its request (a request id) has no usable received_at at all."""
    none = found.filter(pl.col("received_at").is_null()).get_column("request_id")
    return rows.get_column("request_id").is_in(none.implode()).fill_null(False)


def apply(frame: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s ``received_at``, each request's earliest where it has a request id."""
    if not found.height or not frame.height:
        return frame
    first = found.select("request_id", pl.col("received_at").alias("_earliest"))
    joined = frame.join(first, on="request_id", how="left", maintain_order="left")
    return joined.with_columns(pl.coalesce("_earliest", "received_at").alias("received_at")).drop(
        "_earliest"
    )


def conflicts_logged(found: pl.DataFrame | None) -> pl.DataFrame | None:
    """``found``, after one log line per request whose rows gave different usable dates.

    The line names the request id and how many dates it had, never a date's
    cell: the earliest is kept (``erasure.intake.received_at_conflict``).
    """
    if found is None:
        return None
    from erasure import logs

    log = logs.get()
    for rid, kept, dates in found.filter(pl.col("dates") > 1).iter_rows():
        log.info(
            "erasure.intake.received_at_conflict",
            request_id=rid,
            dates=int(dates),
            kept=kept.isoformat() if kept is not None else None,
        )
    return found
