"""Structured logs: the format chosen, the renderers, and the events a run emits.

The run's events are read with ``structlog.testing.capture_logs`` and compared
whole, so that a field added, renamed or dropped fails here; none may carry a
raw identifier or the token.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import structlog
from structlog.testing import capture_logs

from erasure import logs
from tests import e2e
from tests.conftest import TOKEN
from tests.sandbox_fixture import Sandbox

RAW = ("user1@example.com", "user2@example.com", "ghost@example.com", "not-an-email")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts from, and leaves, structlog's defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(name="captured")
def _captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The events of what runs inside the test, as capture_logs records them.

    ``erasure run`` configures structlog for the whole process, which would
    replace capture_logs' processors; here it keeps them.
    """
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
    with capture_logs() as events:
        yield events


def _input(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        "ticket,email\nT1,user1@example.com\nT2,user2@example.com\n"
        "T3,ghost@example.com\nT4,not-an-email\n"
    )


def _assert_no_raw_value_or_token(events: list[dict[str, Any]], *also: str) -> None:
    text = repr(events).casefold()
    for value in (*RAW, TOKEN, *also):
        assert value.casefold() not in text, f"{value!r} is in a log event"


def _finished(**fields: Any) -> dict[str, Any]:
    """An ``erasure.run.finished`` event: a successful run of one, unless ``fields`` say."""
    event: dict[str, Any] = {
        "run": 1,
        "planned_pairs": 1,
        "planned_keys": 1,
        "already_done": 0,
        "outcomes": {"erased": 0, "not_found": 0, "rejected": 0, "failed": 0},
        "pending": 0,
        "requests": 0,
        "in_doubt": 0,
        "invalid": 0,
        "suppressed": 0,
        "suppression_failed": 0,
        "open_elsewhere": 0,
        "withdrawn": 0,
        "unrecorded": 0,
        "duration_s": ANY,  # seconds: how long it took is not behaviour
        "stop_reason": None,
        "preflight": None,
        "error": None,
        "exit_code": 0,
        "event": "erasure.run.finished",
        "log_level": "info",
    }
    return event | fields


# ---------------------------------------------------------------- the module


def test_choose_format_follows_the_request_then_the_terminal() -> None:
    assert "json" == logs.choose_format("json", _Terminal())
    assert "console" == logs.choose_format("console", io.StringIO())
    assert "console" == logs.choose_format(None, _Terminal())
    assert "json" == logs.choose_format(None, io.StringIO())  # cron, a pipe, a file


def test_json_format_is_one_object_per_line_with_level_and_utc_time() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    log = logs.get()
    log.info("erasure.test.event", key="k1", n=3)
    log.debug("erasure.test.hidden")  # below INFO: dropped
    log.warning("erasure.test.other")
    lines = stream.getvalue().splitlines()
    assert [
        {"key": "k1", "n": 3, "event": "erasure.test.event", "level": "info", "timestamp": ANY},
        {"event": "erasure.test.other", "level": "warning", "timestamp": ANY},
    ] == [json.loads(line) for line in lines]
    assert all(json.loads(line)["timestamp"].endswith("Z") for line in lines)


def test_console_format_is_for_people_and_keeps_httpx_quiet() -> None:
    stream = io.StringIO()
    logging.getLogger("httpx").setLevel(logging.NOTSET)
    logs.configure("console", stream=stream)
    logs.get().info("erasure.test.event", key="k1")
    text = stream.getvalue()
    assert "erasure.test.event" in text and "key=k1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    # httpx logs every request at INFO: that would be one line per delete
    assert logging.WARNING == logging.getLogger("httpx").level


# ---------------------------------------------------------------- a run's events


def test_a_run_logs_started_preflight_passed_and_finished(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    captured: list[dict[str, Any]],
) -> None:
    sandbox = sandbox_factory(generate_count=10, echo_identifier=True)
    _input(tmp_path)
    job = e2e.job(write_job, sandbox.url)
    assert 1 == e2e.run(job)  # T4's invalid email: a person must fix the file
    assert [
        {
            "run": 1,
            "job": str(job),
            "ledger": str(tmp_path / "ledger.sqlite"),
            "input_rows": 4,
            "to_send": 3,  # (request, identifier) pairs
            "deletes": 3,  # one per distinct identifier
            "already_done": 0,
            "in_doubt": 0,
            "invalid": 1,
            "event": "erasure.run.started",
            "log_level": "info",
        },
        {"run": 1, "error_code": 404, "event": "erasure.preflight.passed", "log_level": "info"},
        _finished(
            planned_pairs=3,
            planned_keys=3,
            outcomes={"erased": 2, "not_found": 1, "rejected": 0, "failed": 0},
            requests=4,  # the preflight and three deletes
            preflight="not_found",
            invalid=1,
            exit_code=1,
        ),
    ] == captured
    _assert_no_raw_value_or_token(captured)


def test_a_retry_is_logged_by_key_and_a_failed_run_says_so(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    captured: list[dict[str, Any]],
) -> None:
    sandbox = sandbox_factory(generate_count=10, fail_5xx=1.0, retry_after=None)
    (tmp_path / "in.csv").write_text("ticket,email\nT1,user1@example.com\n")
    job = e2e.job(write_job, sandbox.url, run={"max_attempts": 2, "preflight": False})
    assert 75 == e2e.run(job)
    [key] = {r["key"] for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert [
        "erasure.run.started",
        "erasure.retry.scheduled",
        "erasure.delete.gave_up",
        "erasure.run.keep_input",  # a failed pair: the next run needs the file
        "erasure.run.finished",
    ] == [e["event"] for e in captured]
    assert {
        "run": 1,
        "key": key,
        "attempt": 1,
        "reason": "http_5xx",
        "detail": ANY,
        "wait_s": ANY,
        "event": "erasure.retry.scheduled",
        "log_level": "debug",
    } == captured[1]
    assert 0 <= captured[1]["wait_s"] <= 0.25  # the first backoff's bound, seconds
    assert captured[1]["detail"] in ("HTTP 500", "HTTP 502", "HTTP 503")  # in words
    assert {
        "run": 1,
        "key": key,
        "attempts": 2,
        "why": "attempts",
        "reason": "http_5xx",
        "detail": ANY,
        "event": "erasure.delete.gave_up",
        "log_level": "warning",
    } == captured[2]
    assert (
        _finished(
            outcomes={"erased": 0, "not_found": 0, "rejected": 0, "failed": 1},
            pending=1,
            requests=2,
            in_doubt=1,  # a 5xx may come after the service acted
            exit_code=75,
        )
        == captured[4]
    )
    _assert_no_raw_value_or_token(captured)


def test_a_refused_token_is_logged_without_the_token(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    captured: list[dict[str, Any]],
) -> None:
    sandbox = sandbox_factory(generate_count=10)
    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.readonly_token)
    _input(tmp_path)
    assert 77 == e2e.run(e2e.job(write_job, sandbox.url))
    error = (
        "the service refused the token (HTTP 403, error 403): missing, invalid, "
        "or without the delete permission"
    )
    assert [
        "erasure.run.started",
        "erasure.preflight.failed",
        "erasure.run.keep_input",  # nothing sent: the next run needs the file
        "erasure.run.finished",
    ] == [e["event"] for e in captured]
    assert {
        "run": 1,
        "error": error,
        "event": "erasure.preflight.failed",
        "log_level": "error",
    } == captured[1]
    assert (
        _finished(
            planned_pairs=3,
            planned_keys=3,
            pending=3,
            requests=1,
            error=error,
            exit_code=77,  # 77 wins over the invalid row's 1
            invalid=1,
        )
        == captured[3]
    )
    _assert_no_raw_value_or_token(captured, sandbox.readonly_token)


def test_a_deadline_stop_is_logged_with_its_reason(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    captured: list[dict[str, Any]],
) -> None:
    sandbox = sandbox_factory(generate_count=10, hang=1.0)  # no delete is ever answered
    (tmp_path / "in.csv").write_text("ticket,email\nT1,user1@example.com\n")
    job = e2e.job(write_job, sandbox.url, api={"timeout_s": 1}, run={"preflight": False})
    assert 75 == e2e.run(job, "--max-duration", "1s")
    stopping = [e for e in captured if e["event"] == "erasure.run.stopping"]
    assert [
        {
            "run": 1,
            "reason": "deadline",
            "detail": "the time budget is used up",
            "event": "erasure.run.stopping",
            "log_level": "warning",
        }
    ] == stopping
    assert ("deadline", 75) == (captured[-1]["stop_reason"], captured[-1]["exit_code"])
    _assert_no_raw_value_or_token(captured)
