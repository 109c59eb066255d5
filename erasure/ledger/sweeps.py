"""A sweep's deletes, per export: what resumes, what is finished (issue 21).

``sweep_state`` (erasure.ledger.state) keeps one row per export (its
SHA-256) and delete key, apart from the input's pairs: a sweep's deletes
never change the pair count, and a later ``not_found`` never rewrites an
earlier ``erased``. An unfinished sweep of an export resumes: only deletes
without a final outcome are sent again. A finished sweep of the same export
is not repeated unless asked (``--again``: a second restore produced the
same export).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from erasure.status_result import SweepDeletes

__all__ = ["ExportSweeps", "counts", "of_export"]

# the exit codes of a sweep that ended having sent what it planned (0, or 1: it found some)
_ENDED = (0, 1)


@dataclass(frozen=True, slots=True)
class ExportSweeps:
    """What the ledger knows of earlier sweeps of one export."""

    runs: tuple[int, ...]  # sweep runs that read this export, oldest first
    finished_run: int | None  # one that ended with every delete of the export final
    final: frozenset[str]  # delete keys with a final outcome (erased or not_found)
    # (profile id, request id, decision) of the matches already recorded
    recorded: frozenset[tuple[str, str | None, str]]


def of_export(db: sqlite3.Connection, sha256: str) -> ExportSweeps:
    """Earlier sweeps of the export with this SHA-256."""
    runs = [
        (int(run), finished_at, code)
        for run, finished_at, code in db.execute(
            "SELECT run, finished_at, exit_code FROM run_state WHERE command = 'sweep' "
            "AND json_extract(started, '$.input.sha256') = ? ORDER BY run",
            (sha256,),
        )
    ]
    rows = db.execute(
        "SELECT key, final_outcome FROM sweep_state WHERE export = ?", (sha256,)
    ).fetchall()
    final = frozenset(str(k) for k, f in rows if f is not None)
    open_ = any(f is None for _, f in rows)
    ended = [r for r, at, code in runs if at is not None and code in _ENDED]
    recorded = frozenset(
        (str(pid), rid, str(decision))
        for pid, rid, decision in db.execute(
            "SELECT profile_id, request_id, json_extract(detail, '$.decision') FROM events "
            "WHERE kind = 'reappeared' "
            "AND run IN (SELECT value FROM json_each(?))",
            (json.dumps([r for r, _, _ in runs]),),
        )
    )
    finished = ended[-1] if ended and not open_ else None
    return ExportSweeps(tuple(r for r, _, _ in runs), finished, final, recorded)


def counts(db: sqlite3.Connection) -> SweepDeletes:
    """Sweep deletes, on their own line: deletes, erased, not found, still open."""
    by = {
        final: int(n)
        for final, n in db.execute(
            "SELECT final_outcome, count(*) FROM sweep_state GROUP BY final_outcome"
        )
    }
    return SweepDeletes(
        deletes=sum(by.values()),
        erased=by.get("erased", 0),
        not_found=by.get("not_found", 0),
        open=by.get(None, 0),
    )
