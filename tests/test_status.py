"""Read-only views of the ledger: per-pair state, status counts, runs, lookup.

On real SQLite ledgers written by the ledger's own writer: the two-run
ledger of tests/test_report.py (every outcome, in doubt, overdue) and small
ones built here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from erasure import cli, deadline_table, deadlines, partition, status
from erasure import ledger as L
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox
from tests.test_report import KEYER, A, B, C, D, E, F, G, _ev, _outcome, _planned, build_ledger

NOW = datetime.now(UTC)


@pytest.fixture(name="db")
def _db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The two-run ledger of tests/test_report.py, read-only."""
    build_ledger(tmp_path / "ledger.sqlite")
    with closing(L.open_readonly(tmp_path / "ledger.sqlite")) as db:
        yield db


def _ledger(path: Path, *events: L.Event) -> sqlite3.Connection:
    with L.Ledger(path, KEYER) as led:
        if events:
            led.append(list(events))
    return L.open_readonly(path)


def test_status_counts_every_outcome_doubt_and_deadline(db: sqlite3.Connection) -> None:
    """The whole status object: each count from the two runs, and the last run."""
    assert {
        "total": 8,
        "erased": 3,  # T1 A, T5 G, T6 A (a person who asked twice)
        "not_found": 2,  # T1 B, T3 D
        "rejected": 1,  # T2 C
        "failed": 1,  # T5 F
        "pending": 1,  # @T4 E, never sent
        "held": 0,  # no legal hold (erasure hold)
        "cancelled": 0,  # no request withdrawn (erasure cancel)
        "in_doubt": 1,  # T3 D: answered only after a killed run's send
        "overdue": 2,  # C finished after its deadline; E unfinished past it
        "requests": 6,
        "invalid": 0,
        "incomplete_reasons": {
            "no_identifier": 0,
            "held": 0,
            "cancelled": 0,
            "rejected": 1,  # T2
            "invalid": 0,
            "open": 2,  # T4 (pending), T5 (failed)
        },
        "deadline_unknown": 0,
        "sweep_deletes": {"deletes": 0, "erased": 0, "not_found": 0, "open": 0},
        "accounting": {
            "pairs": 8,
            "erased": 3,
            "not_found": 2,
            "rejected": 1,
            "failed": 1,
            "pending": 1,
            "in_doubt": 1,
            "requests": 6,
            "complete": 3,  # T1, T3, T6
            "incomplete": 3,
            "incomplete_reasons": {
                "no_identifier": 0,
                "held": 0,
                "cancelled": 0,
                "rejected": 1,
                "invalid": 0,
                "open": 2,
            },
            "open_past_deadline": 1,  # T4: E is unfinished past its deadline
            "finished_late": 1,  # T2: C finished after its deadline
            "deadline_unknown": 0,
            "unresolved": 0,
            "resolved": 0,
            "held": 0,
            "cancelled": 0,
        },
        "verdict": "3 of 6 requests are incomplete: 1 with a rejected identifier,"
        " 2 still open (pending or failed).",
        "open_elsewhere": [],  # the runs' input files are recorded without a path
        "safe_to_delete": [],
        "reappeared": {  # no sweep has found a profile that came back
            "profiles": 0,
            "by_profile_id": 0,
            "by_identifier": 0,
            "erased_again": 0,
            "delete_open": 0,
            "waiting": 0,
        },
        "running": None,
        "last_run": {
            "run": 2,
            "started_at": ANY,
            "finished_at": ANY,
            "exit_code": 1,
            "input_sha256": "ab" * 32,
            "input_rows": 7,
            "plan": {"pairs": 7},
            "settings": {"deadline_days": 30},
            "outcomes": {"erased": 1, "not_found": 1},
            "stop_reason": None,
            "error": None,
        },
        "last_run_pending": 0,  # run 2 planned T6 A only, and erased it
        "runs": 2,
        "chain_head": {"seq": 29, "link": ANY},  # the "created" event and 28 more
    } == status.status(db, now=NOW).as_json()


def test_pairs_hold_each_request_s_own_state(db: sqlite3.Connection) -> None:
    rows = {(r["request_id"], r["key"]): r for r in status.pairs(db, now=NOW).iter_rows(named=True)}
    assert list(status.REPORT_COLUMNS) == list(status.pairs(db).columns)[:13]
    picked = {
        pair: (r["outcome"], r["in_doubt"], r["attempts"], r["profile_id"], r["overdue"])
        for pair, r in rows.items()
    }
    assert {
        ("T1", A): ("erased", False, 1, "101", False),
        ("T1", B): ("not_found", False, 1, None, False),
        ("T2", C): ("rejected", False, 1, None, True),
        ("T3", D): ("not_found", True, 1, None, False),
        ("@T4", E): ("pending", False, 0, None, True),
        ("T5", F): ("failed", False, 2, None, False),
        ("T5", G): ("erased", False, 1, "+7001", False),
        ("T6", A): ("erased", False, 1, "102", False),  # not T1's attempt inherited
    } == picked


def test_an_unanswered_send_leaves_its_pair_pending_and_in_doubt(tmp_path: Path) -> None:
    with closing(
        _ledger(
            tmp_path / "l.sqlite",
            _planned(1, "T1", A, None),
            _planned(1, "T2", B, None),
            _ev(L.Kind.SENT, 1, key=A, attempt=1),  # killed before the answer
        )
    ) as db:
        rows = status.pairs(db).select("request_id", "outcome", "in_doubt", "attempts").rows()
        info = status.status(db).as_json()
    assert [("T1", "pending", True, 1), ("T2", "pending", False, 0)] == rows
    assert (2, 2, 1, None, 0) == (
        info["total"],
        info["pending"],
        info["in_doubt"],
        info["last_run"],
        info["runs"],
    )


def test_an_empty_ledger_has_zeros_and_no_run(tmp_path: Path) -> None:
    with closing(_ledger(tmp_path / "l.sqlite")) as db:
        assert {
            "total": 0,
            "erased": 0,
            "not_found": 0,
            "rejected": 0,
            "failed": 0,
            "pending": 0,
            "held": 0,
            "cancelled": 0,
            "in_doubt": 0,
            "overdue": 0,
            "requests": 0,
            "invalid": 0,
            "incomplete_reasons": dict.fromkeys(partition.REASONS, 0),
            "deadline_unknown": 0,
            "sweep_deletes": {"deletes": 0, "erased": 0, "not_found": 0, "open": 0},
            "accounting": dict.fromkeys(
                [
                    "pairs",
                    "erased",
                    "not_found",
                    "rejected",
                    "failed",
                    "pending",
                    "in_doubt",
                    "requests",
                    "complete",
                    "incomplete",
                    "open_past_deadline",
                    "finished_late",
                    "deadline_unknown",
                    "unresolved",
                    "resolved",
                    "held",
                    "cancelled",
                ],
                0,
            )
            | {"incomplete_reasons": dict.fromkeys(partition.REASONS, 0)},
            "verdict": "The ledger holds no request yet.",
            "open_elsewhere": [],
            "safe_to_delete": [],
            "reappeared": dict.fromkeys(
                (
                    "profiles",
                    "by_profile_id",
                    "by_identifier",
                    "erased_again",
                    "delete_open",
                    "waiting",
                ),
                0,
            ),
            "running": None,
            "last_run": None,
            "last_run_pending": None,
            "runs": 0,
            "chain_head": {"seq": 1, "link": ANY},  # the ledger's "created" event
        } == status.status(db).as_json()
        assert deadlines.rule("30 days") == deadline_table.rule_of(db)  # the default: 30 days


def test_deadline_days_come_from_the_last_run_s_settings(tmp_path: Path) -> None:
    detail = json.dumps({"settings": {"deadline_days": 10}})
    old = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    with closing(
        _ledger(
            tmp_path / "l.sqlite",
            _ev(L.Kind.RUN_STARTED, 1, detail=detail),
            _planned(1, "T1", A, old),
        )
    ) as db:
        assert deadlines.rule("10 days") == deadline_table.rule_of(db)
        [row] = status.pairs(db, now=datetime(2026, 1, 12, tzinfo=UTC)).iter_rows(named=True)
    assert ("2026-01-11T23:59:59+00:00", True) == (row["deadline"], row["overdue"])


def test_lookup_finds_every_request_naming_a_key(db: sqlite3.Connection) -> None:
    rows = status.lookup(db, [A])
    assert [("T1", "erased"), ("T6", "erased")] == rows.select("request_id", "outcome").rows()
    assert status.erased_or_gone(rows)
    assert status.erased_or_gone(status.lookup(db, [B, G]))  # not_found counts as gone
    assert not status.erased_or_gone(status.lookup(db, [A, F]))  # F failed
    assert not status.erased_or_gone(status.lookup(db, [C]))  # rejected needs a person
    assert not status.erased_or_gone(status.lookup(db, [E]))  # still pending
    unknown = status.lookup(db, ["9" * 32])
    assert 0 == unknown.height and not status.erased_or_gone(unknown)


def test_runs_lists_every_run_oldest_first(db: sqlite3.Connection) -> None:
    runs = status.runs(db)
    assert [(1, None, None), (2, 1, {"erased": 1, "not_found": 1})] == [
        (r["run"], r["exit_code"], r["outcomes"]) for r in runs
    ]
    assert runs[0]["finished_at"] is None  # killed: never finished


def test_a_stopped_run_counts_its_unrecorded_keys_as_pending(tmp_path: Path) -> None:
    finished = json.dumps({"exit_code": 75, "unrecorded": 5, "stop_reason": "deadline"})
    with closing(
        _ledger(
            tmp_path / "l.sqlite",
            _ev(L.Kind.RUN_STARTED, 1, detail="{}"),
            _planned(1, "T1", A, None),
            _planned(1, "T2", B, None),
            _ev(L.Kind.SENT, 1, key=A, attempt=1),
            _outcome(1, "T1", A, "erased", error_code=0, http_status=200),
            _ev(L.Kind.RUN_FINISHED, 1, detail=finished),
        )
    ) as db:
        info = status.status(db).as_json()
    assert (1, 6, "deadline") == (
        info["pending"],
        info["last_run_pending"],  # B, and the five never recorded
        info["last_run"]["stop_reason"],
    )


def test_status_while_a_run_is_going(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every request hangs at the service: status says running, since when, how many in
    flight, and counts none of them in doubt (they are not: their run is still waiting)."""
    sandbox = sandbox_factory(generate_count=3, hang=1.0, hang_s=3.0)
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(
        write_job,
        sandbox.url,
        api={"timeout_s": 30},
        run={"concurrency": 3, "preflight": False},
    )
    exit_codes: list[int] = []
    options = Options(install_signal_handlers=False)
    runner = threading.Thread(target=lambda: exit_codes.append(e2e.run_with(job, options)))
    runner.start()
    try:
        info = _status_when(
            job, capsys, lambda i: bool(i["running"]) and i["running"]["in_flight"] == 3
        )
        assert info["running"]["run"] == info["last_run"]["run"] == 1
        assert info["running"]["since"] == info["last_run"]["started_at"]
        assert (info["in_doubt"], info["pending"], info["total"]) == (0, 3, 3), info
        assert info["accounting"]["in_doubt"] == 0
        assert 0 == cli.main(["status", str(job)])
        out = capsys.readouterr().out
        assert f"running: run 1 since {info['running']['since']}, 3 deletes in flight" in out
        assert "in doubt: 0 pairs" in out and "finished never" not in out
        assert out.count("unresolved invalid records") == 1  # said once, in the account
    finally:
        sandbox.configure(hang=0.0)  # the hangs end (closed after hang_s); the retries answer
        runner.join(timeout=60)
    assert exit_codes == [0]
    assert 0 == cli.main(["status", str(job), "--json"])
    after = json.loads(capsys.readouterr().out)
    assert after["running"] is None and after["erased"] == 3


def _status_when(
    job: Path, capsys: pytest.CaptureFixture[str], ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """``status --json`` once ``ready`` holds (the run is in another thread: we watch its
    ledger, as a person would; 20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        # 66 until the run created its ledger, 78 while it writes the ledger's first tables
        code = cli.main(["status", str(job), "--json"])
        out = capsys.readouterr().out
        info: dict[str, Any] = json.loads(out) if code == 0 else {}
        if info and ready(info):
            return info
        assert code in (0, 66, 78) and time.monotonic() < deadline, f"never ready: {code} {out}"
        time.sleep(0.05)  # polling another thread's ledger; there is no event to wait on
