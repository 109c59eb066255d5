"""Decisions in words: why a pair is held or cancelled, and who approved the run that sent it.

The readers that turn what :mod:`erasure.decisions` keeps into the words
people read: ``lookup`` and receipts name the standing hold or cancellation
of a pair (:func:`reasons`); the report fills its ``decision`` column
(:func:`with_decision`), including the pairs a run sent under an approved
plan (:func:`approvals`, erasure.approval). Read-only; the rules of what a
decision holds stay in :mod:`erasure.decisions`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.decisions import Standing, read, requests_naming, standing
from erasure.ledger.details import ApprovalDetail, loads
from erasure.ledger.events import Outcome

if TYPE_CHECKING:
    import polars as pl


def reasons(
    db: sqlite3.Connection,
    ledger: Path | None,
    pairs: Iterable[tuple[str | None, str]],
    now: datetime | None = None,
) -> dict[tuple[str | None, str], str]:
    """For each (request id, key) a standing decision names: its kind and reason, in words.

    A pair is named by a hold on its request or its key, by a hold on a key
    its request names, or by its request's cancellation (the same rule as
    :func:`erasure.decisions.sync`, holds first).
    """
    at = now if now is not None else datetime.now(UTC)
    found = read(db, ledger, at) if ledger is not None else standing(db, at)
    if not found:
        return {}
    by_key: dict[str, Standing] = {h.key: h for h in found.holds if h.key is not None}
    by_request: dict[str, Standing] = {
        h.request_id: h for h in found.holds if h.request_id is not None
    }
    for key, standing_hold in list(by_key.items()):
        for rid in requests_naming(db, [key]):
            if rid is not None:
                by_request.setdefault(rid, standing_hold)
    cancels = {c.request_id: c for c in found.cancels if c.request_id is not None}
    out: dict[tuple[str | None, str], str] = {}
    for rid, key in pairs:
        hold: Standing | None = by_key.get(key)
        if hold is None and rid is not None:
            hold = by_request.get(rid)
        if hold is not None:
            out[(rid, key)] = f"held by {hold.who} since {hold.at}: {hold.reason}"
        elif rid is not None and rid in cancels:
            c = cancels[rid]
            out[(rid, key)] = f"cancelled by {c.who} at {c.at}: {c.reason}"
    return out


def with_decision(db: sqlite3.Connection, rows: pl.DataFrame) -> pl.DataFrame:
    """The report's rows with ``decision`` filled: held and cancelled pairs (kind and words),
    and pairs a run sent under an approved plan (who approved it)."""
    import polars as pl

    rows = _with_approved(db, rows)
    decided = pl.col("outcome").is_in([Outcome.HELD.value, Outcome.CANCELLED.value])
    pairs = rows.filter(decided).select("request_id", "key").rows()
    if not pairs:
        return rows
    why = reasons(db, None, pairs)
    words = pl.DataFrame(
        [(r, k, w) for (r, k), w in why.items()],
        schema={"request_id": pl.String, "key": pl.String, "_words": pl.String},
        orient="row",
    )
    joined = rows.join(
        words, on=["request_id", "key"], how="left", nulls_equal=True, maintain_order="left"
    )
    return joined.with_columns(
        pl.when(decided)
        .then(pl.coalesce("_words", "outcome"))
        .otherwise(pl.col("decision"))
        .alias("decision")
    ).drop("_words")


def approvals(db: sqlite3.Connection) -> dict[int, str]:
    """Run number -> who approved it, in words: the runs sent under an approved plan."""
    out: dict[int, str] = {}
    for (detail,) in db.execute(
        "SELECT e.detail FROM decision_state d JOIN events e ON e.seq = d.seq "
        "WHERE d.kind = 'approval' ORDER BY d.seq"
    ):
        d = loads(ApprovalDetail, detail)
        if d.run is not None:  # approvals of the first weeks named no run
            by = ", ".join(f"sha256:{a[:16]}" for a in d.approvers)
            out[d.run] = f"approved by {by} (plan sha256:{d.plan_sha256[:16]})"
    return out


def _with_approved(db: sqlite3.Connection, rows: pl.DataFrame) -> pl.DataFrame:
    """``decision`` of the pairs the latest approved run planned: who approved it."""
    import polars as pl

    runs = approvals(db)
    if not runs or not rows.height:
        return rows
    marks = ",".join("?" * len(runs))
    found = db.execute(
        "SELECT p.request_id, p.key, max(r.run) FROM pair_runs r JOIN pair_state p "
        f"ON p.pair = r.pair WHERE r.run IN ({marks}) GROUP BY p.pair",
        sorted(runs),
    ).fetchall()
    words = pl.DataFrame(
        [(r, k, runs[n]) for r, k, n in found],
        schema={"request_id": pl.String, "key": pl.String, "_approved": pl.String},
        orient="row",
    )
    joined = rows.join(
        words, on=["request_id", "key"], how="left", nulls_equal=True, maintain_order="left"
    )
    return joined.with_columns(pl.coalesce("decision", "_approved").alias("decision")).drop(
        "_approved"
    )
