"""The sandbox's faults, its command line and its clean stop, over real sockets."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import httpx
import pytest

from erasure.sandbox.faults import Dice, TokenBucket
from erasure.sandbox.settings import SWITCHES, Settings
from tests.sandbox_fixture import (  # noqa: F401  (fixtures, also imported by conftest)
    Sandbox,
    SandboxProcess,
    _sandbox,
    _sandbox_factory,
)

Factory = Callable[..., Sandbox]


def test_5xx_answers_delete_nothing(sandbox: Sandbox) -> None:
    sandbox.configure(fail_5xx=1)
    statuses = {sandbox.delete(email=f"user{i}@example.com").status_code for i in range(30)}
    assert statuses == {500, 502, 503}
    sandbox.configure(fail_5xx_codes=[500])
    response = sandbox.delete(email="user1@example.com")
    assert (response.status_code, response.json()["error"]) == (500, 500)
    sandbox.configure(fail_5xx_codes=[502])
    response = sandbox.delete(email="user1@example.com")
    assert (response.status_code, response.headers["content-type"]) == (502, "text/html")
    stats = sandbox.stats()
    assert stats["erased_profiles"] == 0
    assert stats["deletes_per_profile"] == {}
    assert sum(stats["answers"].values()) == stats["requests"] == 32


def test_429_carries_retry_after_in_seconds_or_as_a_date(sandbox: Sandbox) -> None:
    sandbox.configure(fail_429=1, retry_after=7)
    response = sandbox.delete(email="user1@example.com")
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    sandbox.configure(retry_after_http_date=True)
    when = parsedate_to_datetime(sandbox.delete(email="user1@example.com").headers["retry-after"])
    assert 0 < (when - datetime.now(UTC)).total_seconds() <= 8
    sandbox.configure(retry_after=None)
    assert "retry-after" not in sandbox.delete(email="user1@example.com").headers
    stats = sandbox.stats()
    assert (stats["answers"], stats["erased_profiles"]) == ({"429": 3}, 0)


def test_rate_limit_answers_429_above_the_rate(sandbox: Sandbox) -> None:
    sandbox.configure(rate_limit=0.001, rate_burst=2)  # two requests, then one per 1000 s
    statuses = [sandbox.delete(email=f"user{i}@example.com").status_code for i in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    assert int(sandbox.delete(email="user9@example.com").headers["retry-after"]) > 900
    assert sandbox.stats()["answers"] == {"erased": 2, "rate_limited": 4}


def test_the_token_bucket_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    now = bucket.updated
    assert [bucket.take(now), bucket.take(now)] == [0, 0]
    assert bucket.take(now) == pytest.approx(0.1)
    assert bucket.take(now + 0.1) == 0
    assert bucket.take(now + 10) == 0  # a long pause refills the burst, not more
    assert bucket.take(now + 10) == 0
    assert bucket.take(now + 10) > 0


def test_every_setting_is_a_switch() -> None:
    assert list(SWITCHES) == [f.name for f in fields(Settings)]


def test_faults_are_reproducible_with_a_seed(sandbox: Sandbox) -> None:
    def statuses() -> list[int]:
        return [sandbox.delete(email="nobody@example.com").status_code for _ in range(40)]

    sandbox.configure(fail_5xx=0.3, fail_429=0.3, seed=11)
    first = statuses()
    sandbox.configure(seed=11)
    assert statuses() == first
    assert {404, 429} <= set(first)
    assert any(status >= 500 for status in first)


def test_probabilities_are_followed(sandbox: Sandbox) -> None:
    sandbox.configure(fail_429=0.25, seed=1)
    hits = sum(sandbox.delete(email="nobody@example.com").status_code == 429 for _ in range(200))
    assert 25 <= hits <= 75  # expected 50; the seed makes the count certain


def test_latency_delays_each_answer(sandbox: Sandbox) -> None:
    sandbox.configure(latency_ms=150)
    started = time.monotonic()
    sandbox.delete(email="user1@example.com")
    assert time.monotonic() - started >= 0.15
    dice = Dice(seed=4)
    spread = [dice.latency_s(Settings(latency_ms=50, latency_jitter_ms=20)) for _ in range(500)]
    assert 0.03 <= min(spread) < max(spread) <= 0.07


def test_drop_closes_the_connection_without_an_answer(sandbox: Sandbox) -> None:
    sandbox.configure(drop=1)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        sandbox.delete(email="user1@example.com")
    assert sandbox.stats()["erased_profiles"] == 0
    sandbox.configure(drop=0)
    assert sandbox.delete(email="user1@example.com").status_code == 200


def test_drop_is_a_disconnect_for_aiohttp_too(sandbox: Sandbox) -> None:
    sandbox.configure(drop=1)

    async def post() -> None:
        async with aiohttp.ClientSession() as session:
            body = {"token": sandbox.token, "db_id": 1, "email": "user1@example.com"}
            async with session.post(sandbox.delete_url, json=body):
                pass

    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(post())


def test_drop_after_delete_loses_the_answer_of_a_real_delete(sandbox: Sandbox) -> None:
    sandbox.configure(drop_after_delete=1)
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox.delete(email="user1@example.com")
    sandbox.configure(drop_after_delete=0)
    assert sandbox.delete(email="user1@example.com").status_code == 404
    stats = sandbox.stats()
    assert stats["answers"] == {"drop_after_delete": 1, "not_found": 1}
    assert stats["deletes_per_profile"] == {sandbox.profiles[1].profile_id: 2}


def test_malformed_answers_are_200_with_a_broken_body(sandbox: Sandbox) -> None:
    sandbox.configure(malformed=1)
    response = sandbox.delete(email="user1@example.com")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert not sandbox.profiles[1].deleted
    sandbox.configure(malformed=0, malformed_after_delete=1)
    response = sandbox.delete(email="user1@example.com")
    assert response.status_code == 200
    assert response.content.startswith(b'{"data":{"profile_id":')
    assert sandbox.profiles[1].deleted


def test_hang_answers_nothing_and_blocks_no_one(sandbox: Sandbox) -> None:
    sandbox.configure(hang=1)
    errors: list[Exception] = []

    def hanging() -> None:
        try:
            httpx.post(
                sandbox.delete_url,
                json={"token": sandbox.token, "db_id": 1, "email": "user1@example.com"},
                timeout=1.0,
                trust_env=False,
            )
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hanging)
    thread.start()
    deadline = time.monotonic() + 10
    while sandbox.stats()["answers"].get("hang", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sandbox.configure(hang=0)
    assert sandbox.delete(email="user2@example.com").status_code == 200  # while one hangs
    thread.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], httpx.ReadTimeout)
    assert not sandbox.profiles[1].deleted


def test_a_hang_ends_by_closing_the_connection(sandbox: Sandbox) -> None:
    sandbox.configure(hang=1, hang_s=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox.delete(email="user1@example.com")
    sandbox.configure(hang=0, hang_after_delete=1)
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox.delete(email="user1@example.com")
    assert sandbox.profiles[1].deleted
    assert sandbox.stats()["answers"] == {"hang": 1, "hang_after_delete": 1}


def test_faults_together_never_delete_a_profile_twice(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory(generate_count=30, seed=2, fail_5xx=0.2, fail_429=0.1, drop=0.1)
    sandbox.configure(retry_after=0, malformed=0.1, drop_after_delete=0.1)
    pending = [f"user{i}@example.com" for i in range(30)]
    for _ in range(50):  # rounds of retries, bounded
        if not pending:
            break
        retry = []
        for email in pending:
            try:
                response = sandbox.delete(email=email)
            except httpx.RemoteProtocolError:
                retry.append(email)
                continue
            if response.status_code not in (200, 404) or not response.text.endswith("}"):
                retry.append(email)
        pending = retry
    assert pending == []
    stats = sandbox.stats()
    assert stats["erased_profiles"] == 30
    counts = stats["deletes_per_profile"]
    after = stats["answers"].get("drop_after_delete", 0) + stats["answers"].get(
        "malformed_after_delete", 0
    )
    assert after > 0
    assert sum(counts.values()) == 30 + after  # each lost answer cost one not-found replay
    assert set(counts.values()) <= {1, 2, 3}


# The command line and the process


def test_port_0_prints_the_first_line_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    with SandboxProcess("--generate", "5", "--stats-file", str(stats_file)) as proc:
        host, port = proc.first_line.removeprefix("listening on http://").split(":")
        assert (host, int(port) > 0) == ("127.0.0.1", True)
        assert proc.delete(email="user4@example.com").status_code == 200
        assert proc.process is not None
        proc.process.send_signal(signal.SIGTERM)
        assert proc.wait() == 0
    stats = json.loads(stats_file.read_text())
    assert (stats["erased_profiles"], stats["profiles_left"]) == (1, 4)


def test_sigint_stops_even_while_a_request_hangs() -> None:
    with SandboxProcess("--generate", "5", "--hang", "1", "--token", "t1") as proc:
        errors: list[Exception] = []

        def hanging() -> None:
            try:
                httpx.post(proc.delete_url, json={"token": "t1"}, timeout=30, trust_env=False)
            except httpx.HTTPError as exc:
                errors.append(exc)

        thread = threading.Thread(target=hanging)
        thread.start()
        deadline = time.monotonic() + 10
        while proc.stats()["answers"].get("hang", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.process is not None
        proc.process.send_signal(signal.SIGINT)
        assert proc.wait() == 0
        thread.join(10)
        assert len(errors) == 1
        assert isinstance(errors[0], httpx.RemoteProtocolError)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "erasure.sandbox", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_the_command_line_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    remote = run_cli("--host", "0.0.0.0", "--port", "0")
    assert remote.returncode == 64
    assert "--allow-remote" in remote.stderr
    assert len(remote.stderr.strip().splitlines()) == 1
    missing = run_cli("--profiles", str(tmp_path / "nope.csv"), "--port", "0")
    assert missing.returncode == 66
    bad = run_cli("--fail-429", "2", "--port", "0")
    assert (bad.returncode, bad.stderr.strip()) == (
        64,
        "erasure sandbox: --fail-429: expected a probability between 0 and 1",
    )
    assert run_cli("--no-such-switch").returncode == 64


def test_help_has_an_example() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "erasure sandbox --generate" in result.stdout
    assert "--drop-after-delete" in result.stdout
