"""The plan: what a run must still do, as set arithmetic.

``pending = planned − finished``: the (request id, key) pairs of the input
minus those whose final outcome (erased, not_found, rejected) is in the
ledger. A pair without a request id is finished when its key has a final
outcome for any request; a pair with one only when that request's has (a
person who asks again is a new erasure). Pure: no I/O.

Memory: a plan of ten million pairs must leave room for the run. The
pending pairs are the input's own columns when none is finished (polars
frames share their columns; when some are, leaving them out copies about
16 bytes a text cell, not the text), and the work is the pending pairs'
columns when no key repeats; only a work that must be grouped is copied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

WORK_COLUMNS = (
    "key",
    "db_id",
    "matching",
    "resource_id",
    "field_name",
    "value",
    "value_is_int",
)


@dataclass(frozen=True, slots=True)
class Plan:
    pending: pl.DataFrame  # pairs still to finish, first-seen order (intake's item schema)
    work: (
        pl.DataFrame
    )  # one row per key to send: WORK_COLUMNS + request_ids, received_ats, in_doubt
    already_done: int  # pairs of the input with a final outcome in the ledger
    already_rejected: int  # of those, how many were rejected
    pairs: int  # (request id, key) pairs to finish: pending's height
    held: int = 0  # pairs of the input a legal hold keeps back (erasure.decisions)
    cancelled: int = 0  # pairs of the input whose request was cancelled
    # those pairs (pending's columns and ``decision``), for the run to record; None: none
    aside: pl.DataFrame | None = None

    def without_pending(self) -> Plan:
        """The same plan without the pending frame, for a run that needs only the work."""
        return replace(self, pending=self.pending.clear())

    @property
    def to_send(self) -> int:
        return self.work.height

    @property
    def in_doubt(self) -> int:
        return int(self.work["in_doubt"].sum()) if self.work.height else 0


def make_plan(items: pl.DataFrame, finished: pl.DataFrame, doubtful: set[str]) -> Plan:
    """Plan a run.

    Args:
        items: the intake's pairs (request_id, key, ...), first-seen order.
        finished: (request_id, key, outcome) of pairs with a final outcome.
        doubtful: keys whose last request may have reached the service unanswered.
    """
    items = _first_seen(items)
    done = _done(items, finished)
    pending = items
    if done.height:
        kept = pl.repeat(True, items.height, eager=True).scatter(done.get_column("i"), False)
        pending = items.filter(kept)
    # Lazily: an eager select or with_columns can copy a column held in
    # chunks (the intake's keys and values are) into one.
    if _distinct(pending.get_column("key")):  # each key's group is its one pair
        work = pending.lazy().select(
            *WORK_COLUMNS,
            request_ids=_singletons(pending, "request_id"),
            received_ats=_singletons(pending, "received_at"),
        )
    else:
        work = (
            pending.lazy()
            .group_by("key", maintain_order=True)
            .agg(
                *(pl.col(c).first() for c in WORK_COLUMNS if c != "key"),
                pl.col("request_id").alias("request_ids"),
                pl.col("received_at").alias("received_ats"),
            )
        )
    doubt = pl.Series(sorted(doubtful), dtype=pl.String).implode()
    work = work.with_columns(in_doubt=pl.col("key").is_in(doubt))
    return Plan(
        pending=pending,
        work=work.collect(),
        already_done=done.height,
        already_rejected=done.filter(pl.col("outcome") == "rejected").height,
        pairs=pending.height,
    )


def _first_seen(items: pl.DataFrame) -> pl.DataFrame:
    """``items`` by row, within a row those with a request id first, else as given.

    The intake's items are in that order already (a row's identifiers share
    its request id): for them this is a check, not a sort.
    """
    rows = items.get_column("row")
    if not rows.null_count() and rows.is_sorted():
        if _nulls(items, "request_id") in (0, items.height):
            return items
        row, asked = pl.col("row"), pl.col("request_id").is_not_null()
        misplaced = row.eq(row.shift()) & asked & ~asked.shift()
        if not items.lazy().select(misplaced.any()).collect().item():
            return items
    return items.sort(pl.col("row"), pl.col("request_id").is_null(), maintain_order=True)


def _done(items: pl.DataFrame, finished: pl.DataFrame) -> pl.DataFrame:
    """Position in ``items`` (``i``) and final outcome of each pair already finished.

    Only the items whose key is in ``finished`` at all are joined: on a
    resumed run that is the part already sent, not the whole input.
    """
    if not finished.height:
        return pl.DataFrame(schema={"i": pl.UInt32, "outcome": pl.String})
    finished = finished.unique(subset=["request_id", "key"], keep="last", maintain_order=True)
    by_pair = finished.filter(pl.col("request_id").is_not_null()).select(
        "request_id", "key", "outcome"
    )
    by_key = finished.unique(subset=["key"], keep="last").select("key", "outcome")
    known = (
        items.lazy()
        .select("request_id", "key")
        .with_row_index("i")
        .filter(pl.col("key").is_in(finished.get_column("key").implode()))
        .collect()
    )
    asked = known.filter(pl.col("request_id").is_not_null()).join(
        by_pair, on=["request_id", "key"], maintain_order="left"
    )
    unasked = known.filter(pl.col("request_id").is_null()).join(
        by_key, on="key", maintain_order="left"
    )
    return (
        pl.concat([asked, unasked]).select("i", "outcome").filter(pl.col("outcome").is_not_null())
    )


def _distinct(keys: pl.Series) -> bool:
    """Whether no key repeats, told by their 64-bit hashes.

    Distinct hashes mean distinct keys, and a table of ten million hashes
    takes a fraction of the memory of one of the keys. The rare collision of
    two hashes (about one run in 400,000 at that size) only takes the
    grouping path.
    """
    return keys.hash().n_unique() == keys.len()


def _singletons(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Each row's value as a one-element list; when all are null, one literal ``[null]``.

    The literal takes no memory whatever the height, where the lists of ten
    million nulls would take 150 MiB.
    """
    if _nulls(frame, column) == frame.height:
        return pl.concat_list(pl.lit(None, frame.schema[column]))
    return pl.concat_list(column)


def _nulls(frame: pl.DataFrame, column: str) -> int:
    """Nulls in ``column``, counted by an expression.

    ``get_column`` would turn a literal column (one value for every row, as
    the intake makes a column the file lacks) into a full one, for good.
    """
    return int(frame.lazy().select(pl.col(column).null_count()).collect().item())
