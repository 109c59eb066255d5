"""`erasure run` end to end: the real CLI against the sandbox on a loopback socket."""

from __future__ import annotations

import bisect
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import cli
from erasure.ratelimit import RateLimiter
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _profile_deletes(sandbox: Sandbox) -> dict[str, int]:
    return dict(sandbox.stats()["deletes_per_profile"])


def test_erases_everything_once_and_resumes_to_nothing(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """All identifiers erased, each profile deleted once; a second run sends nothing."""
    sandbox = sandbox_factory(generate_count=60)
    e2e.emails_csv(tmp_path / "in.csv", range(50))
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    assert {"erased": 50} == e2e.outcome_counts(tmp_path / "ledger.sqlite")
    deletes = _profile_deletes(sandbox)
    assert 50 == len(deletes) and set(deletes.values()) == {1}
    before = sandbox.stats()["requests"]
    assert 0 == e2e.run(job)
    assert before == sandbox.stats()["requests"]  # not even a preflight


def test_duplicate_identifiers_are_sent_once_and_answer_every_ticket(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """The same email under two tickets is one delete and two report rows."""
    sandbox = sandbox_factory(generate_count=10)
    (tmp_path / "in.csv").write_text(
        "ticket,email\nT1,user1@example.com\nT2, USER1@example.com \nT1,user1@example.com\n"
    )
    assert 0 == e2e.run(e2e.job(write_job, sandbox.url))
    rows = e2e.ledger_pairs(tmp_path / "ledger.sqlite")
    assert [("T1", "erased"), ("T2", "erased")] == [(r["request_id"], r["outcome"]) for r in rows]
    assert 1 == len({r["key"] for r in rows})
    assert {1} == set(_profile_deletes(sandbox).values())


def test_a_new_request_for_an_erased_person_is_sent_again(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """Finality is per request: a new ticket naming the same email is a new erasure."""
    sandbox = sandbox_factory(generate_count=10)
    (tmp_path / "in.csv").write_text("ticket,email\nT1,user1@example.com\n")
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    (tmp_path / "in.csv").write_text("ticket,email\nT1,user1@example.com\nT9,user1@example.com\n")
    assert 0 == e2e.run(job)
    rows = {r["request_id"]: r["outcome"] for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert {"T1": "erased", "T9": "not_found"} == rows


def test_wrong_token_stops_at_the_preflight(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused token exits 77 after the preflight alone; no real identifier is sent."""
    sandbox = sandbox_factory(generate_count=20)
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    monkeypatch.setenv("ALTCRAFT_TOKEN", "wrong-token")
    assert 77 == e2e.run(e2e.job(write_job, sandbox.url))
    assert 1 == sandbox.stats()["requests"]
    err = capsys.readouterr().err
    assert "refused the token" in err and "wrong-token" not in err
    assert {"pending": 10} == e2e.outcome_counts(tmp_path / "ledger.sqlite")


@pytest.mark.parametrize("preflight", [True, False])
def test_readonly_token_stops_after_at_most_concurrency_requests(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    preflight: bool,
) -> None:
    """A token without the delete permission (403) stops the run at once: exit 77."""
    sandbox = sandbox_factory(generate_count=200)
    e2e.emails_csv(tmp_path / "in.csv", range(200))
    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.readonly_token)
    job = e2e.job(write_job, sandbox.url, run={"preflight": preflight, "concurrency": 4})
    assert 77 == e2e.run(job)
    assert sandbox.stats()["requests"] <= (1 if preflight else 4)
    assert 0 == sandbox.stats()["erased_profiles"]
    # the identifiers met a token code: not final, a later run sends them
    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.token)
    assert 0 == e2e.run(job)
    assert {"erased": 200} == e2e.outcome_counts(tmp_path / "ledger.sqlite")


def test_tariff_limit_stops_the_run_with_69_and_the_next_run_finishes(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """An `unavailable` code (402) mid-run stops with 69; nothing is lost or repeated."""
    sandbox = sandbox_factory(generate_count=100, tariff_limit_after=30)
    e2e.emails_csv(tmp_path / "in.csv", range(100))
    job = e2e.job(write_job, sandbox.url, run={"concurrency": 4, "rate_per_s": 200})
    assert 69 == e2e.run(job)
    counts = e2e.outcome_counts(tmp_path / "ledger.sqlite")
    assert 30 == counts["erased"] and 70 == counts["pending"]
    sandbox.configure(tariff_limit_after=None)
    assert 0 == e2e.run(job)
    assert {"erased": 100} == e2e.outcome_counts(tmp_path / "ledger.sqlite")
    assert {1} == set(_profile_deletes(sandbox).values())


def test_wrong_url_stops_with_69(
    sandbox: Sandbox,
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 404 without an Altcraft body (a proxy's page) is a wrong URL: 69 at once."""
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    assert 69 == e2e.run(e2e.job(write_job, sandbox.url + "/wrong/prefix"))
    assert "check api.base_url" in capsys.readouterr().err
    assert 0 == sandbox.stats()["requests"]  # nothing reached the delete path


def test_a_service_failing_every_preflight_attempt_stops_with_69(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only 5xx at the preflight: 69 with one plain line naming the last failure."""
    sandbox = sandbox_factory(generate_count=5, fail_5xx=1.0)
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(write_job, sandbox.url, run={"max_attempts": 2})
    assert 69 == e2e.run(job)
    errors = [
        json.loads(line)["error"]
        for line in capsys.readouterr().err.splitlines()
        if '"erasure.error"' in line
    ]
    assert 1 == len(errors)
    assert "no usable answer in 2 attempts (last: http_5xx, HTTP 5" in errors[0]
    assert "Retry(" not in errors[0]


def test_unreachable_service_stops_with_69(
    write_job: Callable[..., Path],
    tmp_path: Path,
    free_tcp_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Connection refused at the preflight: 69, one line, no traceback."""
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    assert 69 == e2e.run(e2e.job(write_job, f"http://127.0.0.1:{free_tcp_port}"))
    err = capsys.readouterr().err
    assert "cannot reach" in err and "Traceback" not in err
    # --log-format json: every stderr line is one JSON object, the error too
    lines = [json.loads(line) for line in err.splitlines()]
    assert [69] == [line["exit_code"] for line in lines if line["event"] == "erasure.error"]


def test_preflight_answer_matching_no_code_stops_with_78(
    sandbox: Sandbox,
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """When not_found is configured wrongly, the preflight names the code it saw."""
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(write_job, sandbox.url, api={"codes": {"not_found": [440]}})
    assert 78 == e2e.run(job)
    assert "error 404" in capsys.readouterr().err
    assert 1 == sandbox.stats()["requests"]


def test_rejected_identifiers_exit_1_and_retry_rejected_sends_them_again(
    sandbox: Sandbox,
    write_job: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A code outside [api.codes] rejects the identifier (exit 1); --retry-rejected resends."""
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(
        write_job, sandbox.url, api={"codes": {"not_found": [440]}}, run={"preflight": False}
    )
    (tmp_path / "in.csv").write_text("ticket,email\nT1,user1@example.com\nT2,nobody@example.com\n")
    assert 1 == e2e.run(job)  # nobody@ answers 404, which now means nothing: rejected
    rows = {r["request_id"]: r for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert "rejected" == rows["T2"]["outcome"] and 404 == rows["T2"]["error_code"]
    assert "nobody" not in (rows["T2"]["error_text"] or "")
    before = sandbox.stats()["requests"]
    assert 1 == e2e.run(job)  # final: not sent again
    assert before == sandbox.stats()["requests"]
    job = e2e.job(write_job, sandbox.url, run={"preflight": False})  # codes fixed
    assert 0 == e2e.run(job, "--retry-rejected")
    rows = {r["request_id"]: r for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert "not_found" == rows["T2"]["outcome"]


def test_rate_ceiling_is_never_exceeded(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No one-second window of the limiter's grants holds more than rate_per_s, and every
    request the server saw went through a grant.

    The ceiling is exact where the code enforces it, at the grant. The server's
    arrival times are not held to it: the sandbox shares this process (and its
    GIL), so on a loaded machine a request granted on time can reach it late,
    bunched with the next (it once saw 54 in a second). They are held to a bound
    that a run without pacing would break.
    """
    grants: list[float] = []
    acquire = RateLimiter.acquire

    async def recorded(self: RateLimiter) -> float:
        granted = await acquire(self)
        grants.append(granted)
        return granted

    monkeypatch.setattr(RateLimiter, "acquire", recorded)
    sandbox = sandbox_factory(generate_count=200, record_times=True)
    e2e.emails_csv(tmp_path / "in.csv", range(150))
    assert 0 == e2e.run(e2e.job(write_job, sandbox.url, run={"rate_per_s": 50, "concurrency": 16}))
    times = sorted(sandbox.stats()["request_times"])
    assert 151 == len(times) == len(grants)  # the preflight and 150 deletes, each granted
    assert _busiest_second(sorted(grants)) <= 50
    assert _busiest_second(times) <= 50 * 1.5


def _busiest_second(times: list[float]) -> int:
    """The most of ``times`` (sorted) in any half-open window [t, t + 1 s)."""
    return max(bisect.bisect_left(times, start + 1.0) - i for i, start in enumerate(times))


def test_dry_run_sends_nothing(
    sandbox: Sandbox,
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--dry-run prints the plan and sends no request, writes no ledger."""
    e2e.emails_csv(tmp_path / "in.csv", range(7))
    assert 0 == e2e.run(e2e.job(write_job, sandbox.url), "--dry-run")
    out = capsys.readouterr().out
    assert re.search(
        r"^\(request, identifier\) pairs 7 = already final in the ledger 0 \+ to send 7$", out, re.M
    )
    assert "to send 7 pairs, as 7 deletes" in out
    assert 0 == sandbox.stats()["requests"]
    assert not (tmp_path / "ledger.sqlite").exists()


def test_max_duration_stops_with_75_and_the_next_run_completes(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The time budget stops cleanly (75); the next run resumes; each profile deleted once.

    No race with the clock: the first 40 are erased by a run of their own, and
    during the budgeted run every delete hangs, so that only the deadline can
    end it and what it leaves is known whatever the machine's speed.
    """
    sandbox = sandbox_factory(generate_count=120)
    e2e.emails_csv(tmp_path / "in.csv", range(40))
    # no preflight: it would meet the hang too, and it is not what is tested here
    job = e2e.job(write_job, sandbox.url, run={"concurrency": 4, "preflight": False})
    assert 0 == e2e.run(job)
    e2e.emails_csv(tmp_path / "in.csv", range(120))
    sandbox.configure(hang=1.0)  # an answer never comes (the client gives up after timeout_s)
    assert 75 == e2e.run(job, "--max-duration", "1s")
    ledger = tmp_path / "ledger.sqlite"
    assert {"erased": 40, "pending": 80} == e2e.outcome_counts(ledger)
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job), "--json"])
    last = json.loads(capsys.readouterr().out)["last_run"]
    assert (2, "deadline", 75) == (last["run"], last["stop_reason"], last["exit_code"])
    sandbox.configure(hang=0.0)
    assert 0 == e2e.run(job)
    assert {"erased": 120} == e2e.outcome_counts(ledger)
    assert {1} == set(_profile_deletes(sandbox).values())
    assert 120 == len(_profile_deletes(sandbox))


def test_a_stop_records_a_bounded_part_of_the_unreached_plan(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A clean stop of a big plan records at most record_on_stop_max unreached keys, counts
    the rest, and stays prompt; status still counts every pending pair; the next run ends it."""
    sandbox = sandbox_factory(generate_count=300)
    e2e.emails_csv(tmp_path / "in.csv", range(300))
    job = e2e.job(write_job, sandbox.url, run={"rate_per_s": 100, "concurrency": 4})
    options = Options(deadline=time.monotonic() + 1, record_on_stop_max=10)
    assert 75 == e2e.run_with(job, options)
    ledger = tmp_path / "ledger.sqlite"
    erased = e2e.outcome_counts(ledger).get("erased", 0)
    planned = e2e.events(ledger, "SELECT DISTINCT key FROM events WHERE kind = 'planned'")
    sent = sandbox.stats()["requests"]
    # reached, plus the feeder's lead (one batch of 64, what the hopper holds below its
    # low mark and what is in flight: the concurrency, 4, each), plus 10 more
    assert len(planned) <= sent + 64 + 2 * 4 + 10
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert 300 - erased == info["last_run_pending"]
    assert 0 == e2e.run(job)
    assert {"erased": 300} == e2e.outcome_counts(ledger)


def test_a_ca_bundle_that_cannot_be_read_is_one_line_and_78(
    sandbox: Sandbox,
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A configuration error met inside the run is one line and 78, never a traceback."""
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(write_job, sandbox.url, api={"ca_bundle": "missing-ca.pem"})
    assert 78 == e2e.run(job)
    err = capsys.readouterr().err
    assert "missing-ca.pem" in err and "Traceback" not in err
    assert 0 == sandbox.stats()["requests"]
