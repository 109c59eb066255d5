"""Input files and their open pairs: what a later run must carry over (issue 21).

An open pair (pending, failed, in doubt) belongs to the input file of the
run that first planned it; a run stopped before it planned its whole input
also leaves that file's unplanned part open (``plan.pairs`` less the pairs
the run planned). The ledger holds keys only, so nothing but that file can
send them: a later run re-reads it when it is still at its recorded path
with the same SHA-256 (erasure.carry), and names it otherwise.

The open pairs are read by the partial index ``pair_state_unfinished``
(derived state, version 4): the cost follows the open pairs, never the
ledger's history. Runs are few (one a night).
"""

from __future__ import annotations

import enum
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from erasure.ledger.read import recorded

__all__ = ["FileState", "InputFile", "file_state", "input_files", "open_pairs"]

# pairs with no final outcome yet: what the partial index pair_state_unfinished holds
UNFINISHED = "(p.outcome IS NULL OR p.outcome = 'failed')"
OPEN_SCHEMA = {"request_id": pl.String, "key": pl.String, "sha256": pl.String}


class FileState(enum.StrEnum):
    """Where an earlier input file stands now, a closed set."""

    # At its recorded path with the same SHA-256: a run re-reads it.
    PRESENT = "present"
    # Another file at its recorded path: its pairs cannot be read from it.
    CHANGED = "changed"
    # Nothing at its recorded path.
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file as the ledger knows it (by SHA-256), and what of it is still open."""

    sha256: str
    path: str  # as its last run recorded it
    open: int  # pairs it first brought with no final outcome, plus ``unplanned``
    unplanned: int  # pairs of it its last run never planned (a stop); not in the ledger
    last_run: int

    @property
    def name(self) -> str:
        return Path(self.path).name


def open_pairs(db: sqlite3.Connection) -> pl.DataFrame:
    """(request_id, key, sha256 of the input that first brought it) of every open pair.

    By the partial index of unfinished pairs; a pair whose first planning was
    archived, or made by another command (a sweep), has no input: left out.
    """
    rows = db.execute(
        "SELECT p.request_id, p.key, json_extract(r.started, '$.input.sha256') "
        "FROM pair_state p INDEXED BY pair_state_unfinished "
        "JOIN events e ON e.seq = p.first_planned "
        "JOIN run_state r ON r.run = e.run AND r.command = 'run' "
        f"WHERE {UNFINISHED}"
    ).fetchall()
    return pl.DataFrame(rows, schema=OPEN_SCHEMA, orient="row").drop_nulls("sha256")


def input_files(db: sqlite3.Connection, open_: pl.DataFrame | None = None) -> list[InputFile]:
    """Every input file a run read (itself or carried over), newest path; with its open count.

    ``open_`` is :func:`open_pairs`' frame, less any pairs the caller settles
    itself (tonight's); None: all of them.
    """
    open_ = open_pairs(db) if open_ is None else open_
    counts = dict(open_.group_by("sha256").len().iter_rows()) if open_.height else {}
    files: dict[str, tuple[str, int, int]] = {}  # sha256 -> (path, last run, unplanned)
    for run, started, finished in db.execute(
        "SELECT run, started, finished FROM run_state WHERE command = 'run' ORDER BY run"
    ):
        start = recorded(started)
        given = start.get("input") if isinstance(start.get("input"), dict) else {}
        assert isinstance(given, dict)
        read = [given, *(c for c in given.get("carried") or [] if isinstance(c, dict))]
        short = _unplanned(db, run, start, recorded(finished))
        for one in read:
            sha, path = one.get("sha256"), one.get("path")
            if isinstance(sha, str) and isinstance(path, str):
                files[sha] = (path, run, short)
    return [
        InputFile(sha, path, int(counts.get(sha, 0)) + short, short, run)
        for sha, (path, run, short) in files.items()
    ]


def _unplanned(
    db: sqlite3.Connection, run: int, start: dict[str, object], end: dict[str, object]
) -> int:
    """Pairs of ``run``'s plan it never planned: recorded at its end, or (killed) inferred."""
    if end:
        value = end.get("unrecorded")
        return int(value) if isinstance(value, int) else 0
    plan = start.get("plan")
    wanted = plan.get("pairs") if isinstance(plan, dict) else None
    if not isinstance(wanted, int):
        return 0
    (planned,) = db.execute("SELECT count(*) FROM pair_runs WHERE run = ?", (run,)).fetchone()
    return max(0, wanted - int(planned))


def file_state(path: str, sha256: str) -> FileState:
    """Whether the file is at ``path`` with this SHA-256 (read whole to hash it)."""
    target = Path(path)
    if not target.is_file():
        return FileState.GONE
    digest = hashlib.sha256()
    try:
        with target.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return FileState.GONE
    return FileState.PRESENT if digest.hexdigest() == sha256 else FileState.CHANGED
