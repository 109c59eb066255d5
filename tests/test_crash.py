"""Real `erasure run` processes: killed, interrupted, locked out, out of disk.

Each test runs the CLI as a subprocess against a sandbox subprocess on a
loopback socket, so that signals, locks and crashes are the real thing.
`make test` runs a bounded number of kills; `make test-long` the full one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import ledger as ledger_mod
from erasure.keys import Keyer
from erasure.run.writer import LINGER_S
from tests import e2e
from tests.conftest import LEDGER_KEY, LONG
from tests.sandbox_fixture import SandboxProcess

pytestmark = pytest.mark.slow


def _popen(job: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "erasure", "run", str(job), "--no-progress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _run(
    job: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = _popen(job, *args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _assert_exactly_once(sb: SandboxProcess, ledger: Path, n: int) -> None:
    """Every identifier erased; a profile that got more than one delete is flagged in doubt."""
    rows = e2e.ledger_pairs(ledger)
    assert n == len(rows)
    assert {"erased", "not_found"} >= {r["outcome"] for r in rows}, e2e.outcome_counts(ledger)
    stats = sb.stats()
    assert n == stats["erased_profiles"]
    resent = sum(1 for c in stats["deletes_per_profile"].values() if c > 1)
    flagged = sum(1 for r in rows if r["in_doubt"])
    assert resent <= flagged
    assert all(r["in_doubt"] for r in rows if r["outcome"] == "not_found")
    assert ledger_mod.verify(ledger, Keyer(LEDGER_KEY.encode())).ok


def test_sigterm_stops_cleanly_and_the_next_run_completes(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """SIGTERM mid-run: exit 75, intents withdrawn, then the next run finishes the job."""
    n = 300
    with SandboxProcess("--generate", str(n), "--latency-ms", "20") as sb:
        e2e.emails_csv(tmp_path / "in.csv", range(n))
        job = e2e.job(write_job, sb.url, run={"rate_per_s": 300, "concurrency": 8})
        proc = _popen(job)
        deadline = time.monotonic() + 30
        while sb.stats(per_profile=False)["erased_profiles"] < 20:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert 75 == proc.returncode, err
        lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON
        assert "erasure.run.stopping" in {line["event"] for line in lines}
        first = sb.stats(per_profile=False)["erased_profiles"]
        assert first < n
        done = _run(job)
        assert 0 == done.returncode, done.stderr
        _assert_exactly_once(sb, tmp_path / "ledger.sqlite", n)


def test_a_second_run_on_the_same_ledger_exits_75_at_once(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """One writer at a time: a concurrent run exits 75 and touches nothing."""
    n = 200
    with SandboxProcess("--generate", str(n), "--latency-ms", "50") as sb:
        e2e.emails_csv(tmp_path / "in.csv", range(n))
        job = e2e.job(write_job, sb.url, run={"rate_per_s": 50, "concurrency": 4})
        first = _popen(job)
        ledger = tmp_path / "ledger.sqlite"
        deadline = time.monotonic() + 30
        while sb.stats(per_profile=False)["requests"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = _run(job, timeout=30)
        assert 75 == second.returncode
        # one line, and that line the error: both must hold, not either
        [line] = second.stderr.splitlines()
        error = json.loads(line)  # stderr is not a terminal: JSON lines
        assert ("erasure.error", 75) == (error["event"], error["exit_code"])
        assert "another run holds the ledger" in error["error"]
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
        assert 75 == first.returncode
        runs = e2e.events(ledger, "SELECT run FROM events WHERE kind = 'run_started'")
        assert 1 == len(runs)


# Where each kill falls: delete requests the sandbox received from that run
# before the kill. 0 is before the first (intake, planning, the ledger's first
# commits), 1 right after the preflight, the rest ever deeper into the plan, so
# that kills land before, between and after group commits. make test-long
# repeats the list three times over a larger plan.
KILL_AFTER = (0, 1, 2, 5, 13, 34, 89, 233)


def _kill_after(proc: subprocess.Popen[str], sb: SandboxProcess, ledger: Path, sent: int) -> bool:
    """SIGKILL ``proc`` once the sandbox received ``sent`` more requests; False: it finished.

    ``sent`` 0 waits for the run's first event in the ledger instead, so
    that the kill falls after its start and before any request.
    """
    base = sb.stats(per_profile=False)["requests"]
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress in 60 s"
        if sent == 0:
            reached = ledger.exists() and _has_run_started(ledger)
        else:
            reached = sb.stats(per_profile=False)["requests"] - base >= sent
        if reached:
            proc.kill()
            proc.communicate(timeout=30)
            return True
        time.sleep(0.005)  # polling a condition, not waiting for luck
    proc.communicate()
    return False


def _has_run_started(ledger: Path) -> bool:
    try:
        rows = e2e.events(ledger, "SELECT seq FROM events WHERE kind = 'run_started'")
    except sqlite3.Error:  # the run is creating the file and its schema
        return False
    return bool(rows)


def test_sigkill_at_chosen_moments_loses_nothing_and_repeats_nothing(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """Killed with SIGKILL again and again, the job still ends with each profile erased once.

    Re-sent identifiers (intents committed before the kill, answers lost)
    are all flagged in doubt, and their number is bounded by the in-flight
    window (the feeder's batch plus the queue plus the workers, plus the
    answers that were lingering for a group commit).
    """
    points = KILL_AFTER * (3 if LONG else 1)
    n = 4000 if LONG else 600
    concurrency = 8
    rate = 200
    with SandboxProcess(
        "--generate",
        str(n),
        "--latency-ms",
        "5",
        "--latency-jitter-ms",
        "5",
        "--drop-after-delete",
        "0.01",
        "--seed",
        "5",
    ) as sb:
        e2e.emails_csv(tmp_path / "in.csv", range(n))
        job = e2e.job(write_job, sb.url, run={"rate_per_s": rate, "concurrency": concurrency})
        ledger = tmp_path / "ledger.sqlite"
        killed = 0
        for sent in points:
            if not _kill_after(_popen(job), sb, ledger, sent):
                break  # finished before the kill
            killed += 1
        for _ in range(5):
            done = _run(job)
            if done.returncode != 75:
                break
        assert 0 == done.returncode, done.stderr[-2000:]
        _assert_exactly_once(sb, ledger, n)
        resent = sum(1 for c in sb.stats()["deletes_per_profile"].values() if c > 1)
        window = max(64, concurrency) + concurrency * 2 + math.ceil(rate * LINGER_S)
        assert resent <= killed * window
        assert killed == len(points)  # the plan outlasts every kill: each one fell mid-job
        runs = e2e.events(ledger, "SELECT run FROM events WHERE kind = 'run_started'")
        assert len(runs) >= killed + 1


def test_a_full_ledger_stops_with_74_and_a_roomier_one_completes(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """The disk fills mid-run: exit 74, one clear line, nothing committed lost."""
    n = 400
    with SandboxProcess("--generate", str(n)) as sb:
        e2e.emails_csv(tmp_path / "in.csv", range(n))
        job = e2e.job(write_job, sb.url, run={"rate_per_s": 1000, "concurrency": 8})
        full = _run(job, env={"ERASURE_LEDGER_MAX_PAGES": "80"})
        assert 74 == full.returncode, full.stderr[-2000:]
        assert "cannot be written" in full.stderr and "Traceback" not in full.stderr
        ledger = tmp_path / "ledger.sqlite"
        assert ledger_mod.verify(ledger, Keyer(LEDGER_KEY.encode())).ok
        erased_before = sb.stats(per_profile=False)["erased_profiles"]
        assert 0 < erased_before < n
        done = _run(job)
        assert 0 == done.returncode, done.stderr[-2000:]
        _assert_exactly_once(sb, ledger, n)
