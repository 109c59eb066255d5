"""The invalid records of a run's input as ledger events, and what a later input resolves.

A run records, beside its plan, each input row it could not use (an
``invalid`` event: row, column, a reason code and words, never the value),
once per (input, row, column), and a ``resolved`` event wherever this input
holds a usable value for a (request, column) an earlier input's record left
open. :func:`invalid_events` computes both from :class:`InputFacts`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from erasure.ledger import Event

__all__ = ["InputFacts", "invalid_events"]


@dataclass(frozen=True, slots=True)
class InputFacts:
    """What the run records of its input beside the plan: never a raw value."""

    sha256: str
    invalid: pl.DataFrame  # intake.INVALID_SCHEMA less ``value``
    usable: pl.DataFrame  # (request_id, column) that held a usable value
    # [suppress] only: the input's email/phone keys and values, in memory, never written
    keep: pl.DataFrame | None = None


def invalid_events(db: sqlite3.Connection, run: int, facts: InputFacts) -> list[Event]:
    """The run's ``invalid`` and ``resolved`` events (shared-events.md).

    ``invalid``: one per record of this input not yet written for the same
    (input sha256, row, column), so that a resumed run on the same file adds
    none. ``resolved``: per (request id, column) of this input that held a
    usable value where an earlier input's record was unresolved; a record
    without a column (no_identifier) is resolved by any usable identifier.
    """
    from erasure.ledger import Event, Kind
    from erasure.ledger import read as ledger_read
    from erasure.ledger.details import InvalidDetail, encode

    seen = ledger_read.invalid_seen(db, facts.sha256)
    out: list[Event] = []
    for rec in facts.invalid.iter_rows(named=True):
        if (rec["row"], rec["column"]) in seen:
            continue
        detail = InvalidDetail(
            input=facts.sha256,
            row=rec["row"],
            column=rec["column"],
            reason=rec["reason"],
            words=rec["words"],
        )
        out.append(
            Event(
                Kind.INVALID,
                run,
                request_id=rec["request_id"],
                db_id=rec["db_id"],
                # its request's earliest usable received_at (erasure.intake.received): a
                # request with no usable identifier keeps its deadline through this
                received_at=_iso(rec.get("received_at")),
                detail=encode(detail),
            )
        )
    out += _resolved(db, run, facts)
    return out


def _iso(moment: Any) -> str | None:
    return None if moment is None else str(moment.isoformat())


def _resolved(db: sqlite3.Connection, run: int, facts: InputFacts) -> list[Event]:
    import polars as pl

    from erasure import pair_rows
    from erasure.ledger import Event, Kind
    from erasure.ledger.details import ResolvedDetail, encode

    if not facts.usable.height:
        return []
    found = pair_rows.invalid_records(db)
    open_ = found.filter(
        ~pl.col("resolved") & pl.col("request_id").is_not_null() & (pl.col("input") != facts.sha256)
    )
    if not open_.height:
        return []
    usable = facts.usable
    by_column = open_.join(usable, on=["request_id", "column"], how="inner", suffix="_right")
    any_id = open_.filter(pl.col("column").is_null()).join(
        usable.group_by("request_id").agg(pl.col("row").min()),
        on="request_id",
        how="inner",
        suffix="_right",
    )
    resolved = pl.concat([by_column, any_id.select(by_column.columns)], how="vertical_relaxed")
    out: list[Event] = []
    for (rid, column), group in resolved.group_by(["request_id", "column"], maintain_order=True):
        detail = ResolvedDetail(
            column=column,
            input=facts.sha256,
            row=int(group.get_column("row_right").min()),  # type: ignore[arg-type]
            resolves=tuple(sorted(int(s) for s in group.get_column("seq"))),
        )
        out.append(
            Event(
                Kind.RESOLVED,
                run,
                request_id=str(rid),
                detail=encode(detail),
            )
        )
    return out
