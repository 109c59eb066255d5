"""Reading the ledger: a read-only connection and the reads the commands make.

Every read comes from the derived state (erasure.ledger.state) and touches
only what it needs: resume joins tonight's keys (a temporary table) against
``pair_state``; status reads ``totals`` and ``run_state``; a report of one
run or one request reads that run's or that request's rows by index; lookup
is one indexed read. :func:`open_readonly` refuses a ledger without this
release's derived state (:class:`NotMigrated`, 78, naming ``erasure
migrate``): migrating writes, and a read-only command never does. Only
``verify``'s replay reads every event (:func:`open_events`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from erasure.errors import (
    FileMissing,
    LedgerBusy,
    LedgerMismatch,
    LedgerUnreadable,
    NotMigrated,
)
from erasure.ledger.counts import (
    INVALID_SCHEMA,
    deadline_flags,
    frame,
    in_doubt_keys,
    in_flight,
    invalid_records,
    overdue,
    request_order,
    request_reasons,
    totals,
)
from erasure.ledger.events import canonical_of
from erasure.ledger.state import has_state
from erasure.status_result import RunRecord

# The accounting's reads live in erasure.ledger.counts: re-exported here with the rest.
__all__ = [
    "INVALID_SCHEMA",
    "PAIR_SCHEMA",
    "SCAN_FACTOR",
    "deadline_flags",
    "doubtful_keys",
    "finished_pairs",
    "frame",
    "head",
    "in_doubt_keys",
    "in_flight",
    "invalid_records",
    "invalid_seen",
    "last_run_pending",
    "open_events",
    "open_readonly",
    "overdue",
    "pair_batches",
    "pairs",
    "plain_head",
    "read_meta",
    "recorded",
    "request_order",
    "request_reasons",
    "runs",
    "tonight",
    "totals",
]


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open the ledger for reading only; safe while a run writes.

    Raises :class:`NotMigrated` (78) when it keeps no derived state of this
    release: every read a command makes is of that state. While a run holds
    the ledger, such a ledger is being migrated by it (a writer migrates
    under the lock, first thing): :class:`LedgerBusy` (75), run it again.
    """
    db = open_events(path)
    if not has_state(db):
        db.close()
        from erasure.ledger.lockprobe import running

        if running(path):
            raise LedgerBusy(
                f"the ledger {path} is being migrated to this release by the run that holds "
                "it now; run this command again when that run has started sending"
            )
        raise NotMigrated(path)
    return db


def open_events(path: Path) -> sqlite3.Connection:
    """Open a ledger (or an archive) for reading only, whatever derived state it keeps.

    For what reads the events themselves: ``verify``'s replay, an archive's
    chain, ``migrate``'s own check. Every other read goes through
    :func:`open_readonly`.
    """
    from erasure.files import readonly_uri
    from erasure.ledger.safety import check_readable

    check_readable(path)  # never through a symbolic link (78)
    if not path.exists():
        raise FileMissing(f"ledger {path} does not exist (no run has written it yet)")
    db: sqlite3.Connection | None = None
    try:
        # a reader may be handed to one worker thread (never used by two at once)
        db = sqlite3.connect(readonly_uri(path), uri=True, check_same_thread=False)
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()
    except MemoryError:  # SQLite's NOMEM, as Python raises it
        if db is not None:
            db.close()
        raise LedgerUnreadable(
            f"ledger {path} cannot be read now: {_MACHINE[sqlite3.SQLITE_NOMEM]}"
        ) from None
    except sqlite3.Error as exc:
        if db is not None:
            db.close()
        if path.stat().st_size == 0:
            # made by a first run that has not committed its schema yet (or was
            # stopped before it did): no ledger yet, as if there were no file
            raise FileMissing(
                f"ledger {path} holds nothing yet (a first run is creating it, or "
                "stopped before it wrote anything)"
            ) from None
        why = _unreadable(exc)
        if why is not None:  # the machine failed, not the file: never "not a ledger"
            raise LedgerUnreadable(f"ledger {path} cannot be read now: {why}") from None
        raise LedgerMismatch(f"ledger {path} is not an erasure ledger: {exc}") from None
    try:
        canonical_of(read_meta(db), f"ledger {path}")  # a newer release's ledger: 78
    except LedgerMismatch:
        db.close()
        raise
    return db


# SQLite's primary result codes that say the machine failed the read (memory, the
# disk, the permission to open), not that the file is something else
_MACHINE = {
    sqlite3.SQLITE_NOMEM: "out of memory; free some and run again",
    sqlite3.SQLITE_IOERR: "an I/O error (a disk error, or a file-size limit); run again",
    sqlite3.SQLITE_FULL: "the disk is full; free space and run again",
    sqlite3.SQLITE_CANTOPEN: "it cannot be opened (permissions?)",
}


def _unreadable(exc: sqlite3.Error) -> str | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    return _MACHINE.get(code & 0xFF)


def read_meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT name, value FROM meta").fetchall())


def head(db: sqlite3.Connection) -> tuple[int, str] | None:
    """The last event's (seq, keyed link), or None for an empty ledger."""
    row = db.execute("SELECT seq, link FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def plain_head(db: sqlite3.Connection) -> tuple[int, str] | None:
    """The plain SHA-256 chain's head (seq, link); None for an empty ledger."""
    row = db.execute("SELECT seq, link FROM plain_links ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


# ---------------------------------------------------------------- resume

_FINISHED_SCHEMA = {"request_id": pl.String, "key": pl.String, "outcome": pl.String}
# Below this many kept pairs per key of tonight's input, resume scans the kept
# finished pairs instead of joining a temporary table of tonight's keys.
SCAN_FACTOR = 4


def tonight(
    db: sqlite3.Connection,
    keys: pl.Series,
    *,
    retry_rejected: bool = False,
    scan_factor: int = SCAN_FACTOR,
) -> tuple[pl.DataFrame, set[str]]:
    """What the ledger knows of tonight's keys: finished pairs and keys in doubt.

    The same answers as :func:`finished_pairs` and :func:`doubtful_keys`
    restricted to ``keys``, from the derived state: the keys go into a
    temporary table, joined against ``pair_state`` by its key index, so
    the cost follows tonight's input, not the ledger's history.
    """
    skip = "AND coalesce(p.outcome, '') != 'rejected'" if retry_rejected else ""
    doubt_sql = "SELECT k.key FROM key_state k WHERE (k.doubt = 1 OR k.unanswered = 1)"
    kept = int(totals(db).get("pairs", 0))
    if kept <= scan_factor * keys.len():
        # Tonight's input is large beside the history: reading the kept
        # finished pairs once (and the few keys in doubt, by their partial
        # index) is cheaper than a million inserts into a temporary table;
        # the plan's join keeps only tonight's.
        finished = frame(
            db,
            "SELECT p.request_id, p.key, p.final_outcome FROM pair_state p "
            f"WHERE p.final_outcome IS NOT NULL {skip} ORDER BY p.final_seq",
            _FINISHED_SCHEMA,
        )
        doubt = {key for (key,) in db.execute(doubt_sql)}
        if doubt:  # tonight's only; no copy of tonight's keys is made for this
            doubt = set(keys.filter(keys.is_in(list(doubt))).to_list())
        return finished, doubt
    db.execute("CREATE TEMP TABLE IF NOT EXISTS tonight (key TEXT PRIMARY KEY) WITHOUT ROWID")
    try:
        db.execute("DELETE FROM temp.tonight")
        # in key order: each insert appends to the B-tree instead of splitting it
        wanted = keys.drop_nulls().unique().sort()
        db.executemany("INSERT INTO temp.tonight VALUES (?)", ((k,) for k in wanted))
        # CROSS JOIN fixes the loop order: tonight's keys outside, each one
        # probing pair_state's key index. Without statistics SQLite guesses
        # both tables alike and scans every kept pair instead (1.5 s at 10M
        # events, where the probes take milliseconds).
        finished = frame(
            db,
            "SELECT p.request_id, p.key, p.final_outcome FROM temp.tonight t "
            "CROSS JOIN pair_state p ON p.key = t.key "
            f"WHERE p.final_outcome IS NOT NULL {skip} ORDER BY p.final_seq",
            _FINISHED_SCHEMA,
        )
        doubtful = {
            key
            for (key,) in db.execute(
                "SELECT k.key FROM temp.tonight t JOIN key_state k ON k.key = t.key "
                "WHERE k.doubt = 1 OR k.unanswered = 1"
            )
        }
    finally:
        db.execute("DROP TABLE IF EXISTS temp.tonight")
    return finished, doubtful


def finished_pairs(db: sqlite3.Connection, *, retry_rejected: bool = False) -> pl.DataFrame:
    """(request_id, key, outcome) of pairs with a final outcome, oldest first.

    A pair listed here is never sent again for that request. With
    ``retry_rejected``, pairs whose last outcome is ``rejected`` are left
    out, so that a run sends them again.
    """
    skip = "AND coalesce(outcome, '') != 'rejected'" if retry_rejected else ""
    return frame(
        db,
        "SELECT request_id, key, final_outcome FROM pair_state "
        f"WHERE final_outcome IS NOT NULL {skip} ORDER BY final_seq",
        _FINISHED_SCHEMA,
    )


def doubtful_keys(db: sqlite3.Connection) -> set[str]:
    """Keys whose last request may have reached the service without an answer."""
    return {
        key for (key,) in db.execute("SELECT key FROM key_state WHERE doubt = 1 OR unanswered = 1")
    }


# ---------------------------------------------------------------- pairs (report, lookup)

PAIR_SCHEMA = {
    "request_id": pl.String,
    "key": pl.String,
    "db_id": pl.Int64,
    "matching": pl.String,
    "outcome": pl.String,
    "in_doubt": pl.Boolean,
    "profile_id": pl.String,
    "error_code": pl.Int64,
    "error_text": pl.String,
    "http_status": pl.Int64,
    "attempts": pl.Int64,
    "first_attempt_at": pl.String,
    "finished_at": pl.String,
    "received_at": pl.String,
}
_PAIR_SELECT = """
    SELECT p.request_id, p.key, p.db_id, p.matching, coalesce(p.outcome, 'pending'),
           (p.in_doubt IS 1) OR (p.outcome IS NULL AND coalesce(
               (SELECT k.doubt = 1 OR k.unanswered = 1 FROM key_state k WHERE k.key = p.key), 0)),
           p.profile_id, p.error_code, p.error_text, p.http_status, p.attempts,
           p.first_attempt_at, p.finished_at, p.received_at
    FROM pair_state p
"""


def pair_batches(
    db: sqlite3.Connection,
    *,
    run: int | None = None,
    request_id: str | None = None,
    keys: Iterable[str] | None = None,
    batch: int = 100_000,
) -> Iterator[pl.DataFrame]:
    """The pairs' current state in first-planned order, ``batch`` rows at a time.

    All pairs, or those planned in ``run``, or those of ``request_id``, or
    those whose key is one of ``keys``: each an indexed read of only those.
    Columns: :data:`PAIR_SCHEMA` (``outcome`` is ``pending`` where none was
    recorded).
    """
    if run is not None:
        sql = _PAIR_SELECT + " JOIN pair_runs r ON r.pair = p.pair WHERE r.run = ? ORDER BY p.pair"
        params: tuple[Any, ...] = (run,)
    elif request_id is not None:
        sql = _PAIR_SELECT + " WHERE p.request_id = ? ORDER BY p.pair"
        params = (request_id,)
    elif keys is not None:
        sql = _PAIR_SELECT + " WHERE p.key IN (SELECT value FROM json_each(?)) ORDER BY p.pair"
        params = (json.dumps(list(keys)),)
    else:
        sql = _PAIR_SELECT + " ORDER BY p.pair"
        params = ()
    cursor = db.execute(sql, params)
    while rows := cursor.fetchmany(batch):
        yield pl.DataFrame(rows, schema=PAIR_SCHEMA, orient="row")


def pairs(
    db: sqlite3.Connection,
    *,
    run: int | None = None,
    request_id: str | None = None,
    keys: Iterable[str] | None = None,
) -> pl.DataFrame:
    """:func:`pair_batches` as one frame."""
    frames = list(pair_batches(db, run=run, request_id=request_id, keys=keys))
    if not frames:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    return pl.concat(frames, rechunk=False)


# ---------------------------------------------------------------- status


def runs(db: sqlite3.Connection) -> list[RunRecord]:
    """Every run, oldest first: start, end, exit code, input, counts (from ``run_state``)."""
    return [
        _run_record(*row)
        for row in db.execute(
            "SELECT run, started_at, finished_at, exit_code, started, finished FROM run_state "
            "ORDER BY run"
        )
    ]


def _run_record(
    run: int,
    started_at: str,
    finished_at: str | None,
    exit_code: int | None,
    started: str | None,
    finished: str | None,
) -> RunRecord:
    """One ``run_state`` row: its start's and its end's recorded details (JSON)."""
    start = recorded(started)
    end = recorded(finished) if finished is not None else None
    given: dict[str, Any] = start["input"] if isinstance(start.get("input"), dict) else {}
    return RunRecord(
        run=run,
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        input_sha256=given.get("sha256"),
        input_rows=given.get("rows"),
        plan=start.get("plan"),
        settings=start.get("settings"),
        outcomes=end.get("outcomes") if end else None,
        stop_reason=end.get("stop_reason") if end else None,
        error=end.get("error") if end else None,
    )


def recorded(text: str | None) -> dict[str, Any]:
    """A run's recorded start or end (``run_state``'s JSON) as it was written; {} if none.

    Read as recorded, not through :mod:`erasure.ledger.details`' types: status
    shows a run's settings and plan as the release that ran it wrote them.
    """
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def last_run_pending(db: sqlite3.Connection, run: int) -> int:
    """Pairs planned by ``run`` without a final outcome or a decision, plus those unrecorded."""
    (left,) = db.execute(
        "SELECT count(*) FROM pair_runs r JOIN pair_state p ON p.pair = r.pair "
        "WHERE r.run = ? AND coalesce(p.outcome, '') "
        "NOT IN ('erased', 'not_found', 'rejected', 'held', 'cancelled')",  # decided: no work
        (run,),
    ).fetchone()
    row = db.execute("SELECT finished FROM run_state WHERE run = ?", (run,)).fetchone()
    unrecorded = recorded(row[0]).get("unrecorded") if row else None
    return int(left) + int(unrecorded or 0)


def invalid_seen(db: sqlite3.Connection, input_sha256: str) -> set[tuple[int, str | None]]:
    """(row, column) of every ``invalid`` record already written for this input file."""
    found = db.execute("SELECT row, col FROM invalid_state WHERE input = ?", (input_sha256,))
    return {(int(row), col) for row, col in found}
