"""`erasure run` against servers that are not a healthy Altcraft, on real loopback sockets.

A scripted HTTP/1.1 server (the standard library's, in a thread) answers
each delete as a test says: a web server's 404 or 501, a login page, a
redirect, a proxy's 5xx page; the sandbox asks for a pause above the cap.
What is checked is what a user sees: the exit code, the one line on stderr
in words (never a traceback), and how many requests the server received
(a wrong endpoint is not retried eight times per identifier).
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from erasure.run import Backoff, Options
from tests import e2e
from tests.raw_http import free_port, make_certificate
from tests.sandbox_fixture import Sandbox

# (status, headers, body) of the answer to request number i (0-based) with this body
Script = Callable[[int, bytes], tuple[int, dict[str, str], bytes]]

NOT_FOUND = json.dumps({"error": 404, "error_text": "Profile not found"}).encode()
ERASED = json.dumps({"data": {"profile_id": "p1"}, "error": 0, "error_text": ""}).encode()
PAGE = b"<!DOCTYPE html><html><head><title>%d</title></head><body>%d</body></html>\n"
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html"}


class ScriptedServer(ThreadingHTTPServer):
    """Answers every POST by ``script``; counts them. Keep-alive (HTTP/1.1)."""

    daemon_threads = True

    def __init__(
        self,
        script: Script,
        ctx: ssl.SSLContext | None = None,
        hang_ups: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.hang_ups = list(hang_ups)  # "fin" or "rst": how each of the first connections ends
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        if ctx is not None:
            self.socket = ctx.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hang up on the first connections at accept, as a proxy whose upstream is down."""
        if self.hang_ups:
            how = self.hang_ups.pop(0)
            if how == "rst":  # SO_LINGER 0: close sends an RST
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that refuses our certificate or hangs up is no failure of the test."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            number = len(self.server.requests)
            self.server.requests.append(body)
        status, headers, content = self.server.script(number, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the counts, not an access log."""


@contextmanager
def scripted(
    script: Script,
    ctx: ssl.SSLContext | None = None,
    hang_ups: list[str] = (),  # type: ignore[assignment]
) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, ctx, hang_ups)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _run(job: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``erasure run JOB`` (console logs); the exit code and the error lines on stderr."""
    code = e2e.run(job)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    return code, [str(e["error"]) for e in lines if e["event"] == "erasure.error"]


def _is_preflight(body: bytes) -> bool:
    return b"erasure-preflight-" in body


# ---------------------------------------------------------------- not Altcraft's API

WRONG: dict[str, tuple[int, dict[str, str], bytes, str]] = {
    # case: status, headers, body, what the line must say
    "404": (404, HTML, PAGE % (404, 404), "HTTP 404: no such path here"),
    "405-empty": (405, {}, b"", "HTTP 405: the method is not allowed here"),
    "501": (501, {"Content-Type": "text/plain"}, b"Not Implemented", "HTTP 501: not implemented"),
    "200-html": (200, HTML, PAGE % (200, 200), "HTTP 200: an HTML page, not an API answer"),
    "302": (302, {"Location": "https://login.example.com/"}, b"", "HTTP 302: a redirect"),
}


@pytest.mark.parametrize("where", ["preflight", "mid-run"])
@pytest.mark.parametrize("case", list(WRONG))
def test_an_answer_that_cannot_be_altcrafts_stops_at_once_with_69_naming_it(
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    where: str,
) -> None:
    status, headers, body, words = WRONG[case]
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    with scripted(lambda i, request: (status, headers, body)) as server:
        job = e2e.job(
            write_job,
            server.url,
            run={"preflight": where == "preflight", "concurrency": 1},
        )
        code, errors = _run(job, capsys)
    assert 69 == code
    assert 1 == len(errors) and words in errors[0] and "check api.base_url" in errors[0]
    assert 1 == len(server.requests)  # no retry, no second identifier
    assert _is_preflight(server.requests[0]) == (where == "preflight")


@pytest.mark.parametrize("where", ["preflight", "mid-run"])
def test_500_502_503_504_stay_transient_whatever_their_body(
    write_job: Callable[..., Path], tmp_path: Path, where: str
) -> None:
    """A proxy's error page while the service restarts must not end the night."""
    failures = [
        (500, JSON, json.dumps({"error": 500, "error_text": "Internal error"}).encode()),
        (502, HTML, PAGE % (502, 502)),
        (503, HTML, PAGE % (503, 503)),
        (504, {"Content-Type": "text/plain"}, b"Gateway Timeout"),
    ]

    def script(i: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
        return failures[i] if i < len(failures) else _healthy(i, request)

    e2e.emails_csv(tmp_path / "in.csv", range(3))
    with scripted(script) as server:
        job = e2e.job(
            write_job,
            server.url,
            run={"preflight": where == "preflight", "concurrency": 1},
        )
        options = Options(install_signal_handlers=False, backoff=Backoff().instant())
        assert 0 == e2e.run_with(job, options)
    assert 4 + (where == "preflight") + 3 == len(server.requests)
    rows = e2e.ledger_pairs(tmp_path / "ledger.sqlite")
    assert {"erased"} == {r["outcome"] for r in rows}
    # at the preflight the 5xx met the made-up address; mid-run, the first identifier
    assert (0 if where == "preflight" else 1) == sum(r["in_doubt"] for r in rows)


def _healthy(i: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    return (404, JSON, NOT_FOUND) if _is_preflight(request) else (200, JSON, ERASED)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_hang_up_at_accept_at_the_preflight_is_transient_not_unreachable(
    write_job: Callable[..., Path], tmp_path: Path, how: str
) -> None:
    """The host was reached (a proxy whose upstream restarts): no 69, the run goes on."""
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    with scripted(_healthy, hang_ups=[how] * 3) as server:
        job = e2e.job(write_job, server.url)
        options = Options(install_signal_handlers=False, backoff=Backoff().instant())
        assert 0 == e2e.run_with(job, options)
        assert server.hang_ups == []  # all three were met
    assert 3 == len(server.requests)  # the preflight once, then each identifier


def test_an_unreadable_404_is_a_garbled_answer_not_a_wrong_url(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """Altcraft's 'not found' padded past the 1 MiB cap on the way: retried, in doubt."""
    padded = NOT_FOUND + b" " * (2 << 20)

    def script(i: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
        return (404, JSON, padded) if i == 0 else (404, JSON, NOT_FOUND)

    e2e.emails_csv(tmp_path / "in.csv", range(1))
    with scripted(script) as server:
        job = e2e.job(write_job, server.url, run={"preflight": False})
        options = Options(install_signal_handlers=False, backoff=Backoff().instant())
        assert 0 == e2e.run_with(job, options)
    assert 2 == len(server.requests)
    [row] = e2e.ledger_pairs(tmp_path / "ledger.sqlite")
    assert ("not_found", True) == (row["outcome"], row["in_doubt"])


# ---------------------------------------------------------------- Retry-After above the cap


def test_a_retry_after_above_the_cap_at_the_preflight_stops_with_75_saying_why(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's hang: Retry-After 300 with retry_after_cap_s = 5 is not waited out."""
    sandbox = sandbox_factory(generate_count=5, fail_429=1.0, retry_after=300)
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(write_job, sandbox.url, run={"retry_after_cap_s": 5})
    code, errors = _run(job, capsys)
    assert 75 == code
    assert 1 == len(errors)
    assert "asked to wait 300 s (Retry-After, HTTP 429)" in errors[0]
    assert "retry_after_cap_s = 5" in errors[0]
    assert 1 == sandbox.stats()["requests"]
    assert {"fail_429": 1} == sandbox.fired()


# ---------------------------------------------------------------- errors in words


def test_a_refused_connection_at_the_preflight_is_said_in_words(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    job = e2e.job(write_job, f"http://127.0.0.1:{free_port()}")
    code, errors = _run(job, capsys)
    assert 69 == code
    assert 1 == len(errors)
    assert "connection refused (nothing listens on that host and port)" in errors[0]


def test_an_unknown_ca_at_the_preflight_points_to_ca_bundle(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certificate = make_certificate(tmp_path, "self-signed")
    e2e.emails_csv(tmp_path / "in.csv", range(2))
    with scripted(lambda i, r: (404, JSON, NOT_FOUND), certificate.server_context()) as server:
        url = server.url.replace("http://", "https://")
        code, errors = _run(e2e.job(write_job, url), capsys)
        assert [] == server.requests  # the handshake failed: nothing was sent
    assert 69 == code
    assert 1 == len(errors)
    assert "TLS: the server's certificate is signed by an unknown CA" in errors[0]
    assert "api.ca_bundle" in errors[0]


def test_an_identifier_that_used_every_attempt_says_why_in_words(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mid-run (no preflight), the run's warning line says what the network did."""
    e2e.emails_csv(tmp_path / "in.csv", range(1))
    job = e2e.job(
        write_job,
        f"http://127.0.0.1:{free_port()}",
        run={"preflight": False, "max_attempts": 2},
    )
    options = Options(install_signal_handlers=False, backoff=Backoff(max_attempts=2).instant())
    assert 75 == e2e.run_with(job, options)
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    gave_up = [e for e in events if e["event"] == "erasure.delete.gave_up"]
    assert 1 == len(gave_up)
    assert "connection refused" in gave_up[0]["detail"]
    assert {"attempts": 2, "why": "attempts", "reason": "connect"}.items() <= gave_up[0].items()


# ---------------------------------------------------------------- a rate that finds itself


@pytest.mark.long
def test_an_auto_rate_follows_a_limit_lowered_mid_run(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """rate_per_s = "auto" against the sandbox: its limit drops from 40/s to 10/s mid-run.

    Judged on the sandbox's clock (the arrival of every delete): within 10 s
    of the drop the run sends at most twice the new limit (it sent four times
    that before), and it keeps sending; never above max_rate_per_s.

    `make test-long` only: it takes 20 s of real time by nature, and
    tests/test_ratelimit.py holds the same controller to the same limits in
    virtual time (test_auto_follows_a_limit_that_moves_down_and_up).
    """
    n, high, low, top = 1500, 40.0, 10.0, 60.0
    sandbox = sandbox_factory(generate_count=n, rate_limit=high, record_times=True)
    e2e.emails_csv(tmp_path / "in.csv", range(n))
    job = e2e.job(
        write_job,
        sandbox.url,
        run={"rate_per_s": "auto", "max_rate_per_s": top, "concurrency": 8},
    )
    options = Options(
        install_signal_handlers=False,
        backoff=Backoff(max_attempts=50),  # every 429 waits its Retry-After: nobody gives up
        deadline=time.monotonic() + 90,  # a backstop only: the tariff limit ends the run
    )
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(e2e.run_with(job, options)))
    run.start()
    try:
        # The run grows from a few per second to the limit; lower it once it is there.
        while _arrivals(sandbox, 1.0) < 0.8 * high and run.is_alive():
            time.sleep(0.2)  # the sandbox is another thread's server: nothing to wait on
        before = _arrivals(sandbox, 1.0)
        sandbox.set_rate_limit(low)
        lowered = time.time()
        while time.time() < lowered + 14 and run.is_alive():
            time.sleep(0.2)
    finally:
        sandbox.configure(tariff_limit_after=0)  # every delete answers 402: the run stops (69)
        run.join()
    assert [69] == codes
    times = sandbox.stats(per_profile=False)["request_times"]
    window = [t for t in times if lowered + 10 <= t < lowered + 14]
    assert before >= 2 * low  # it had found the old limit: what follows is a drop
    assert 0.3 * low * 4 <= len(window) <= 2 * low * 4, len(window)
    assert _peak(times) <= top


def _arrivals(sandbox: Sandbox, seconds: float) -> int:
    """Deletes that arrived in the last ``seconds`` on the sandbox's clock."""
    stats = sandbox.stats(per_profile=False)
    times = stats.get("request_times", [])
    return sum(1 for t in times if t >= time.time() - seconds)


def _peak(times: list[float]) -> int:
    """The most arrivals in any sliding one-second window."""
    peak, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak
