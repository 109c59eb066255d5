"""Nothing falls out: open pairs of earlier input files join tonight's plan (issue 21).

The ledger holds keys, never identifiers, so only the file that brought an
open pair (pending, failed, in doubt) can send it. Before a run plans, the
open pairs of earlier files (erasure.ledger.inputs, by index) less those
tonight's input names itself (settled tonight, whichever file first brought
them) are taken file by file:

- a file still at its recorded path with the same SHA-256 is read again and
  its open pairs join tonight's plan (logged ``erasure.run.carried_over``);
- a file gone or changed is named (``erasure.run.open_elsewhere``: name,
  SHA-256 prefix, count, and how to settle them), and the run exits 1.

The cost follows the open pairs and the earlier files that hold them, never
the ledger's history.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from erasure.errors import ErasureError
from erasure.ledger import finality, inputs
from erasure.ledger.inputs import FileState, InputFile

if TYPE_CHECKING:
    import sqlite3

    from erasure.intake import Intake
    from erasure.job import Job
    from erasure.keys import Keyer
    from erasure.run import Summary

__all__ = [
    "SHA_SHOWN",
    "Carried",
    "Elsewhere",
    "after_run",
    "carry_over",
    "for_run",
    "open_elsewhere",
    "say_keep",
    "settle_words",
    "tonight",
]

SHA_SHOWN = 12  # hex digits of a file's SHA-256 shown to people
_PAIR = ["request_id", "key"]


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """An earlier input file with open pairs that cannot be read from its recorded path."""

    file: InputFile
    state: FileState  # gone or changed

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file.name,
            "path": self.file.path,
            "sha256": self.file.sha256,
            "open": self.file.open,
            "state": self.state.value,
        }


@dataclass(frozen=True, slots=True)
class Carried:
    """What tonight's run takes over from earlier input files."""

    items: pl.DataFrame  # their open pairs, in the intake's item schema (rows after tonight's)
    read: tuple[tuple[InputFile, int], ...]  # each file read again, and the pairs it brought
    missing: tuple[Elsewhere, ...]  # files gone or changed: named, exit 1
    # with [suppress]: the email and phone identifiers of every file read again, final
    # pairs included (a stopped run's erasures wait for their values to be suppressed)
    identifiers: pl.DataFrame | None = None

    @property
    def open_elsewhere(self) -> int:
        return sum(m.file.open for m in self.missing)

    def info(self) -> dict[str, list[dict[str, object]]]:
        """What the run's start records (``input``): files carried over, files named."""
        return {
            "carried": [{"path": f.path, "sha256": f.sha256, "pairs": n} for f, n in self.read],
            "open_elsewhere": [m.as_dict() for m in self.missing],
        }

    def merged(
        self, items: pl.DataFrame, finished: pl.DataFrame | None = None
    ) -> tuple[pl.DataFrame, int]:
        """Tonight's items and the carried ones, and how many were carried.

        With ``finished`` (the ledger's final pairs of these keys), only the
        carried pairs still open, each once: tonight's input keeps its own
        accounting, and the carried pairs are all to send.
        """
        kept = self.items
        if not kept.height:
            return items, 0
        if finished is not None:
            kept = kept.join(finished.select(_PAIR), on=_PAIR, how="anti", nulls_equal=True).unique(
                _PAIR, keep="first", maintain_order=True
            )
        if not kept.height:
            return items, 0
        return pl.concat([items, kept], how="vertical_relaxed"), kept.height


def settle_words(missing: Elsewhere) -> str:
    """One line for a person: which file, how many pairs, and the two ways to settle them."""
    f = missing.file
    said = "is gone from" if missing.state is FileState.GONE else "was changed at"
    return (
        f"{f.open} pairs of the earlier input {f.name} (sha256 {f.sha256[:SHA_SHOWN]}) are "
        f"still open and the file {said} {f.path}: put that file back there (or run "
        f"`erasure run JOB --input` with it) to send them, or `erasure cancel` their requests"
    )


def _left(db: sqlite3.Connection, tonight: pl.DataFrame | None, sha: str | None) -> pl.DataFrame:
    """Open pairs of earlier files, less those tonight's items name and tonight's file's."""
    open_ = inputs.open_pairs(db)
    if sha is not None:
        open_ = open_.filter(pl.col("sha256") != sha)
    if tonight is not None and open_.height:
        open_ = open_.join(tonight.select(_PAIR), on=_PAIR, how="anti", nulls_equal=True)
    return open_


def open_elsewhere(db: sqlite3.Connection) -> tuple[list[Elsewhere], list[InputFile]]:
    """For ``status``: files with open pairs gone or changed, and files safe to delete.

    Safe to delete: still at their recorded path, unchanged, every pair final.
    """
    missing, done = [], []
    held = _held_inputs(db)
    named = _named_by_last_run(db)  # files there but unreadable with its job: it said so
    for f in inputs.input_files(db, _left(db, None, None)):
        state = inputs.file_state(f.path, f.sha256)
        if f.open and state is FileState.PRESENT and f.sha256 in named:
            state = FileState.CHANGED
        if f.open and state is not FileState.PRESENT:
            missing.append(Elsewhere(f, state))
        elif not f.open and state is FileState.PRESENT and f.sha256 not in held:
            done.append(f)
    return missing, done


def _held_inputs(db: sqlite3.Connection) -> set[str]:
    """The input files that brought a held pair: kept, since a release sends it from there.

    Read only when the ledger holds a held pair at all (its kept total).
    """
    from erasure.ledger import read as ledger_read

    if not ledger_read.totals(db).get("held", 0):
        return set()
    rows = db.execute(
        "SELECT DISTINCT json_extract(r.started, '$.input.sha256') FROM pair_state p "
        "JOIN events e ON e.seq = p.first_planned "
        "JOIN run_state r ON r.run = e.run AND r.command = 'run' WHERE p.outcome = 'held'"
    ).fetchall()
    return {str(r[0]) for r in rows if r[0] is not None}


def _named_by_last_run(db: sqlite3.Connection) -> set[str]:
    """SHA-256 of the earlier files the last run named as open elsewhere."""
    row = db.execute(
        "SELECT json_extract(started, '$.input.open_elsewhere') FROM run_state "
        "WHERE command = 'run' ORDER BY run DESC LIMIT 1"
    ).fetchone()
    try:
        found = json.loads(row[0]) if row and row[0] else []
    except ValueError:
        return set()
    return {str(m.get("sha256")) for m in found if isinstance(m, dict)}


def carry_over(db: sqlite3.Connection, job: Job, keyer: Keyer, tonight: Intake) -> Carried:
    """Tonight's carried-over pairs: earlier files read again, or named when they cannot be."""
    from erasure import intake

    left = _left(db, tonight.items, tonight.sha256)
    files = [f for f in inputs.input_files(db, left) if f.open and f.sha256 != tonight.sha256]
    parts: list[pl.DataFrame] = []
    read: list[tuple[InputFile, int]] = []
    missing: list[Elsewhere] = []
    found: list[pl.DataFrame] = []  # with [suppress]: every email and phone of the files read
    offset = _last_row(tonight.items, 0)
    for f in files:
        state = inputs.file_state(f.path, f.sha256)
        if state is not FileState.PRESENT:
            missing.append(Elsewhere(f, state))
            continue
        try:
            earlier = intake.read(job, keyer, Path(f.path)).items
        except ErasureError:  # this job cannot read it (its columns changed, say)
            missing.append(Elsewhere(f, FileState.CHANGED))
            continue
        if job.suppress is not None:
            found.append(_identifiers(earlier))
        if not f.unplanned:  # every pair of it is in the ledger: only the open ones
            mine = left.filter(pl.col("sha256") == f.sha256).select(_PAIR)
            earlier = earlier.join(mine, on=_PAIR, how="semi", nulls_equal=True)
            if earlier.height < mine.height:  # read with this job, it names them no more
                residue = replace(f, open=mine.height - earlier.height)
                missing.append(Elsewhere(residue, FileState.CHANGED))
        elif tonight.items.height:
            earlier = earlier.join(
                tonight.items.select(_PAIR), on=_PAIR, how="anti", nulls_equal=True
            )
        # after tonight's rows, in the earlier file's order
        earlier = earlier.with_columns(pl.col("row") + offset)
        offset = _last_row(earlier, offset)
        parts.append(earlier)
        read.append((f, earlier.height))
    items = pl.concat(parts) if parts else tonight.items.clear()
    identifiers = pl.concat(found) if found else None
    return Carried(items, tuple(read), tuple(missing), identifiers)


_SUPPRESSIBLE = ("email", "phone")
_IDENTIFIER_COLUMNS = ["key", "matching", "value", "db_id"]  # erasure.after.suppress's


def _identifiers(items: pl.DataFrame) -> pl.DataFrame:
    """The email and phone identifiers of ``items``, each key once."""
    return (
        items.filter(pl.col("matching").is_in(_SUPPRESSIBLE))
        .select(_IDENTIFIER_COLUMNS)
        .unique("key", keep="first", maintain_order=True)
    )


def _last_row(items: pl.DataFrame, otherwise: int) -> int:
    last = items.get_column("row").max() if items.height else None
    return int(last) if isinstance(last, int) else otherwise


def for_run(db: sqlite3.Connection, job: Job, keyer: Keyer, tonight: Intake) -> Carried:
    """:func:`carry_over`, each file read again or named in the log (stderr)."""
    from erasure import logs

    log = logs.get()
    carried = carry_over(db, job, keyer, tonight)
    for f, n in carried.read:
        log.info(
            "erasure.run.carried_over",
            file=f.name,
            sha256=f.sha256[:SHA_SHOWN],
            open=n,
            path=f.path,
        )
    for missing in carried.missing:
        log.warning(
            "erasure.run.open_elsewhere",
            file=missing.file.name,
            sha256=missing.file.sha256[:SHA_SHOWN],
            open=missing.file.open,
            state=missing.state.value,
            message=settle_words(missing),
        )
    return carried


def after_run(summary: Summary, input_info: dict[str, Any]) -> None:
    """The run's end: open pairs of files gone or changed make exit 1 (``summary``); a run
    that leaves work names the input files to keep."""
    summary.open_elsewhere = sum(int(m["open"]) for m in input_info.get("open_elsewhere", []))
    if summary.pending or summary.unrecorded:
        say_keep(input_info)


def say_keep(input_info: dict[str, Any]) -> None:
    """A run stopped with work left: which input files to keep (it and those it carried)."""
    from erasure import logs

    log = logs.get()
    for f in [input_info, *input_info.get("carried", [])]:
        name = Path(f["path"]).name
        log.warning(
            "erasure.run.keep_input",
            file=name,
            path=f["path"],
            sha256=f["sha256"][:SHA_SHOWN],
            message=f"keep {name} where it is until a run has finished it: the ledger holds "
            "keys only, and the next run reads it again",
        )


@dataclass(frozen=True, slots=True)
class Tonight:
    """A run's pairs before its plan: tonight's input, and the open pairs it carries over."""

    items: pl.DataFrame  # tonight's items, then the carried pairs still open (each once)
    extra: int  # how many carried pairs: tonight's input keeps its own accounting
    info: dict[str, list[dict[str, object]]]  # what the run's start records (Carried.info)
    finished: pl.DataFrame  # the ledger's final pairs of these keys (erasure.ledger.read)
    doubtful: set[str]  # keys in doubt among them
    earlier: pl.DataFrame | None = None  # with [suppress]: Carried.identifiers


def tonight(
    db: sqlite3.Connection, job: Job, keyer: Keyer, data: Intake, *, retry_rejected: bool
) -> Tonight:
    """Tonight's input with the earlier files' open pairs, and what the ledger knows of them.

    The ledger is asked about these keys only: a join against its derived
    state, not a read of its history.
    """
    from erasure import logs
    from erasure.ledger import read as ledger_read

    carried = for_run(db, job, keyer, data)
    keys = carried.merged(data.items)[0].get_column("key")
    finished, doubtful = ledger_read.tonight(db, keys, retry_rejected=retry_rejected)
    # what the run will skip as final: the events must bear it out (78 if not); timed, and
    # logged just before the run's start (bench/carry.py measures it on its own)
    skipped = finished.get_column("key").unique().to_list()
    t0 = time.perf_counter()
    cited = finality.check_keys(db, skipped, keyer, final_only=True)
    if skipped:  # (a first run of a file skips nothing)
        logs.get().info(
            "erasure.run.final_checked",
            keys=len(skipped),
            events=cited,
            seconds=round(time.perf_counter() - t0, 3),
        )
    items, extra = carried.merged(data.items, finished)
    return Tonight(items, extra, carried.info(), finished, doubtful, carried.identifiers)
