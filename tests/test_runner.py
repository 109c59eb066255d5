"""The Runner with an injected transport and a real ledger file: the retry decision in place.

The answers come from an ``httpx.MockTransport``; everything else (the job
file, the intake, the plan, the SQLite ledger, the writer) is real. The log
events are captured (``structlog.testing.capture_logs``), never printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import polars as pl
import pytest
from structlog.testing import capture_logs

from erasure import cli, intake
from erasure import job as job_mod
from erasure import ledger as ledger_mod
from erasure.errors import ExitCode, InternalError, TryAgainLater, Unreachable
from erasure.keys import Keyer
from erasure.ledger import Ledger
from erasure.run import Backoff, Options, Runner, Summary, make_plan
from erasure.run.runner import UNFORESEEN_LIMIT
from tests import e2e
from tests.conftest import LEDGER_KEY, TOKEN

Handler = Callable[[httpx.Request], httpx.Response]
EMPTY = pl.DataFrame(schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String})


def _run(
    job_path: Path, handler: Handler, options: Options
) -> tuple[Summary, list[dict[str, object]]]:
    """One run over the job's input; the bodies of every request the service received."""
    job = job_mod.load(job_path)
    keyer = Keyer(LEDGER_KEY.encode())
    plan = make_plan(intake.read(job, keyer).items, EMPTY, set())
    seen: list[dict[str, object]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return handler(request)

    with Ledger(job.ledger.path, keyer) as ledger, capture_logs() as logged:
        runner = Runner(
            job,
            plan,
            ledger,
            ledger.next_run(),
            TOKEN,
            replace(options, transport=httpx.MockTransport(record)),
        )
        summary = anyio.run(runner.execute)
    LOGGED[:] = logged
    return summary, seen


LOGGED: list[dict[str, object]] = []  # the last run's log events


def _too_long(request: httpx.Request) -> httpx.Response:
    """429 with a pause far above any cap."""
    return httpx.Response(429, headers={"Retry-After": "3600"})


NO_WAIT = Options(install_signal_handlers=False, backoff=Backoff().instant())


def test_a_retry_after_above_the_cap_at_the_preflight_stops_with_75_and_says_why(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = write_job(run={"retry_after_cap_s": 60})
    summary, seen = _run(job, _too_long, Options(install_signal_handlers=False))
    assert isinstance(summary.fatal, TryAgainLater)
    assert "retry_after_cap_s = 60" in str(summary.fatal)
    assert ExitCode.TEMPFAIL == summary.exit_code()
    assert 1 == len(seen)  # the preflight alone, sent once: no wait, no real identifier
    assert str(seen[0]["email"]).startswith("erasure-preflight-")


def test_a_retry_after_above_the_cap_fails_the_identifier_for_this_run(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    job = write_job(input={"request_id_column": "ticket"}, run={"preflight": False})
    summary, seen = _run(job, _too_long, Options(install_signal_handlers=False))
    assert {"failed": 2} == {k: v for k, v in summary.as_dict()["outcomes"].items() if v}
    assert 2 == len(seen)  # one request each: the pause is not waited out
    assert ExitCode.TEMPFAIL == summary.exit_code()


def test_a_preflight_that_never_gets_an_answer_uses_every_attempt_then_stops_with_69(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    job = write_job(run={"max_attempts": 3})
    policy = Backoff.for_run(job_mod.load(job).run).instant()
    summary, seen = _run(
        job,
        lambda request: httpx.Response(503),
        Options(install_signal_handlers=False, backoff=policy),
    )
    assert isinstance(summary.fatal, Unreachable)
    assert "no usable answer in 3 attempts (last: http_5xx, HTTP 503)" in str(summary.fatal)
    assert ExitCode.UNAVAILABLE == summary.exit_code()
    assert 3 == len(seen)


def test_transient_failures_are_retried_until_an_answer(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """Two 503s, then 'erased': one identifier, three requests, no wait in test mode."""
    e2e.emails_csv(tmp_path / "in.csv", range(1))
    job = write_job(input={"request_id_column": "ticket"}, run={"preflight": False})
    answers = iter([503, 503, 200])

    def flaky(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        body = {"error": 0, "error_text": "", "data": {"profile_id": "p1"}}
        return httpx.Response(status, json=body) if status == 200 else httpx.Response(status)

    summary, seen = _run(job, flaky, NO_WAIT)
    assert 1 == summary.outcomes["erased"]
    assert 1 == summary.in_doubt  # a 503 may come after the service acted
    assert 3 == len(seen) == summary.requests
    assert ExitCode.OK == summary.exit_code()


@pytest.mark.parametrize("code", [401, 402])
def test_a_run_wide_refusal_in_a_worker_stops_the_run(
    write_job: Callable[..., Path], tmp_path: Path, code: int
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = write_job(
        input={"request_id_column": "ticket"}, run={"preflight": False, "concurrency": 1}
    )
    summary, seen = _run(
        job, lambda request: httpx.Response(200, json={"error": code, "error_text": "no"}), NO_WAIT
    )
    assert 1 == len(seen)  # the first refusal stops every other identifier
    stopping = [e for e in LOGGED if e["event"] == "erasure.run.stopping"]
    assert [e["reason"] for e in stopping] == ["token" if code == 401 else "unavailable"]
    assert (ExitCode.NOPERM if code == 401 else ExitCode.UNAVAILABLE) == summary.exit_code()
    assert summary.stop_reason in ("token", "unavailable")


# ---------------------------------------------------------------- the unforeseen

SECRET = "user0@example.com"  # an exception's message may quote anything: it must go nowhere


def _boom(request: httpx.Request) -> httpx.Response:
    raise RuntimeError(f"a bug that quotes {SECRET}")


def test_an_unforeseen_exception_is_a_transient_in_doubt_failure_with_one_log_line(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(1))
    job = write_job(input={"request_id_column": "ticket"}, run={"preflight": False})
    calls = iter([_boom, lambda r: httpx.Response(200, json={"error": 0, "data": {}})])
    summary, seen = _run(job, lambda request: next(calls)(request), NO_WAIT)
    assert 1 == summary.outcomes["erased"]
    assert 1 == summary.in_doubt  # the request may have left before the bug struck
    assert 2 == len(seen)
    unforeseen = [e for e in LOGGED if e["event"] == "erasure.delete.unforeseen"]
    assert 1 == len(unforeseen)
    assert {"exception": "RuntimeError", "attempt": 1, "log_level": "error"}.items() <= (
        unforeseen[0].items()
    )
    assert SECRET not in repr(LOGGED)
    assert ExitCode.OK == summary.exit_code()


def test_unforeseen_exceptions_in_a_row_stop_the_run_cleanly_with_70(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the run's use case: the run's end is recorded, the ledger verifies."""
    e2e.emails_csv(tmp_path / "in.csv", range(30))
    job = e2e.job(
        write_job,
        "http://127.0.0.1:9",
        run={"preflight": False, "concurrency": 1, "max_attempts": 8},
    )
    options = Options(
        install_signal_handlers=False,
        backoff=Backoff().instant(),
        transport=httpx.MockTransport(_boom),
    )
    assert ExitCode.SOFTWARE == e2e.run_with(job, options)
    err = capsys.readouterr().err
    assert "Traceback" not in err and SECRET not in err
    lines = [json.loads(line) for line in err.splitlines()]
    unforeseen = [e for e in lines if e["event"] == "erasure.delete.unforeseen"]
    assert UNFORESEEN_LIMIT == len(unforeseen)  # one line per failure, then the stop
    assert {"RuntimeError"} == {e["exception"] for e in unforeseen}
    ledger = tmp_path / "ledger.sqlite"
    finished = e2e.events(ledger, "SELECT detail FROM events WHERE kind = 'run_finished'")
    assert 1 == len(finished)
    detail = json.loads(finished[0]["detail"])
    assert 70 == detail["exit_code"] and "RuntimeError" in detail["error"]
    assert "internal" == detail["stop_reason"]
    assert SECRET not in detail["error"]
    # 8 + 8 + 4 requests: two identifiers failed for this run, the third is left pending
    assert {"failed": 2, "pending": 28} == e2e.outcome_counts(ledger)
    assert ledger_mod.verify(ledger, Keyer(LEDGER_KEY.encode())).ok


def test_an_unforeseen_exception_at_every_preflight_attempt_stops_with_70(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    job = write_job()
    summary, seen = _run(job, _boom, NO_WAIT)
    assert isinstance(summary.fatal, InternalError)
    assert "RuntimeError in each of 8 attempts" in str(summary.fatal)
    assert ExitCode.SOFTWARE == summary.exit_code()
    assert 8 == len(seen)  # the preflight alone: no real identifier was sent


def test_a_bug_anywhere_in_the_command_is_one_line_and_70(
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shell's last resort: a bug outside the run's own guard (here, in the use case)."""
    e2e.emails_csv(tmp_path / "in.csv", range(1))
    job = write_job()

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError(SECRET)

    monkeypatch.setattr("erasure.app.run", broken)
    assert 70 == cli.main(["run", str(job), "--no-progress", "--log-format", "console"])
    err = capsys.readouterr().err
    assert ["erasure: error: internal error: KeyError (a bug; please report it)"] == (
        err.splitlines()
    )
