"""The plan: what a run must still do, as set arithmetic.

``pending = planned − finished``: the (request id, key) pairs of the input
minus those whose final outcome (erased, not_found, rejected) is in the
ledger. A pair without a request id is finished when its key has a final
outcome for any request; a pair with one only when that request's has (a
person who asks again is a new erasure). Pure: no I/O.
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

    def without_pending(self) -> Plan:
        """The same plan without the pending frame, for a run that needs only the work."""
        return replace(self, pending=self.pending.clear())

    @property
    def to_send(self) -> int:
        return self.work.height

    @property
    def in_doubt(self) -> int:
        return int(self.work["in_doubt"].sum()) if self.work.height else 0


def make(items: pl.DataFrame, finished: pl.DataFrame, doubtful: set[str]) -> Plan:
    """Plan a run.

    Args:
        items: the intake's pairs (request_id, key, ...), first-seen order.
        finished: (request_id, key, outcome) of pairs with a final outcome.
        doubtful: keys whose last request may have reached the service unanswered.
    """
    finished = finished.unique(subset=["request_id", "key"], keep="last", maintain_order=True)
    by_pair = finished.filter(pl.col("request_id").is_not_null())
    done_keys = finished.unique(subset=["key"], keep="last").select("key", "outcome")

    with_req = items.filter(pl.col("request_id").is_not_null()).join(
        by_pair, on=["request_id", "key"], how="left", maintain_order="left"
    )
    without_req = items.filter(pl.col("request_id").is_null()).join(
        done_keys, on="key", how="left", maintain_order="left"
    )
    judged = pl.concat([with_req, without_req]).sort("row", maintain_order=True)
    done = judged.filter(pl.col("outcome").is_not_null())
    pending = judged.filter(pl.col("outcome").is_null()).drop("outcome")

    work = pending.group_by("key", maintain_order=True).agg(
        *(pl.col(c).first() for c in WORK_COLUMNS if c != "key"),
        pl.col("request_id").alias("request_ids"),
        pl.col("received_at").alias("received_ats"),
    )
    work = work.with_columns(
        pl.col("key")
        .is_in(pl.Series(sorted(doubtful), dtype=pl.String).implode())
        .alias("in_doubt")
    )
    return Plan(
        pending=pending,
        work=work,
        already_done=done.height,
        already_rejected=done.filter(pl.col("outcome") == "rejected").height,
        pairs=pending.height,
    )
