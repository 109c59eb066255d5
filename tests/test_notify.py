"""`[notify]` and `erasure notify`: signed notices to a real loopback receiver.

The receiver verifies every signature with the standard library alone (as
the README's snippet does), refuses a timestamp outside its window and a
signature it has seen before, and records what it accepted. Retries run on
an injected clock: the suite waits for nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure.after import notify
from erasure.after.keep import Notify
from tests import e2e
from tests.sandbox_fixture import Sandbox

SECRET = "notify-secret-0123456789"
TOLERANCE_S = 300


class Receiver:
    """A ticket system's webhook: verifies, refuses replays, records; scripted answers."""

    def __init__(self, port: int = 0) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        self.refused: list[str] = []
        self.script: list[int] = []  # statuses to answer first (500, ...), then 200
        self.slow = threading.Event()  # set: the next request waits for `release`
        self.release = threading.Event()
        self._seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.slow.is_set():
                    receiver.slow.clear()
                    receiver.release.wait(10)
                status = receiver.handle(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/erasure"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        # the verification a receiver does, standard library only
        header = headers.get("Erasure-Signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        timestamp = parts.get("t", "")
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            self.refused.append("signature")
            return 401
        if abs(time.time() - int(timestamp)) > TOLERANCE_S:
            self.refused.append("stale")
            return 401
        if parts["v1"] in self._seen:
            self.refused.append("replay")
            return 409
        if self.script:  # failed: nothing was processed, so the same bytes may come again
            return self.script.pop(0)
        self._seen.add(parts["v1"])
        self.raw.append((headers, body))
        self.accepted.append(json.loads(body))
        return 200

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERASURE_NOTIFY_SECRET", SECRET)


def _input(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone,received_at\n"
        "T1,user1@example.com,,2026-11-20\n"
        "T2,user2@example.com,+79000000002,2026-11-21\n"
        "T3,gone@example.org,,2026-11-22\n"
        "T4,not-an-email,,2026-11-23\n",
        encoding="utf-8",
    )


def _job(write_job: Callable[..., Path], url: str, hook: str, **notify_: object) -> Path:
    return e2e.job(
        write_job,
        url,
        input={
            "received_at_column": "received_at",
            "columns": {"email": "email", "phone": "phone"},
        },
        notify={"url": hook, "max_attempts": 1, **notify_},
    )


class FakeTime:
    """An injected clock: sleeping moves it, nothing waits."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_run_announces_each_touched_request_signed_and_without_an_identifier(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    sandbox = sandbox_factory(generate_count=10)
    _input(tmp_path)
    job = _job(write_job, sandbox.url, receiver.url)
    assert 1 == e2e.run(job)  # T4's invalid email; notices change nothing
    got = {n["request_id"]: n for n in receiver.accepted}
    assert {"T1", "T2", "T3", "T4"} == set(got)
    assert got["T1"]["status"] == "complete" and got["T1"]["reasons"] == []
    assert got["T4"]["status"] == "incomplete" and got["T4"]["reasons"] == ["no_identifier"]
    assert got["T2"]["counts"]["identifiers"] == 2
    assert got["T1"]["deadline"].startswith("2026-12-20T23:59:59")
    for headers, body in receiver.raw:
        assert b"@" not in body and b"+7900" not in body and b"not-an-email" not in body
        assert headers["Idempotency-Key"] == json.loads(body)["idempotency_key"]
    # a replayed notice (the same bytes and header) is refused by the receiver
    headers, body = receiver.raw[0]
    assert 409 == receiver.handle(headers, body)
    # the same state is not announced again
    assert 1 == e2e.run(job)
    assert 4 == len(receiver.accepted)
    kinds = e2e.events(
        tmp_path / "ledger.sqlite", "SELECT detail FROM events WHERE kind = 'notice'"
    )
    statuses = [json.loads(r["detail"])["status"] for r in kinds]
    assert statuses.count("queued") == 4 and statuses.count("delivered") == 4


def test_while_the_receiver_is_down_the_run_finishes_and_notify_delivers_later(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = Receiver()
    port = down.server.server_address[1]
    url = down.url
    down.stop()  # nothing listens there now: connection refused
    sandbox = sandbox_factory(generate_count=10)
    (tmp_path / "in.csv").write_text(
        "ticket,email,phone,received_at\nT1,user1@example.com,,\nT2,user2@example.com,,\n"
    )
    job = _job(write_job, sandbox.url, url)
    assert 0 == e2e.run(job)  # undelivered notices never change run's exit code
    capsys.readouterr()
    assert 75 == cli.main(["notify", str(job)])
    assert "2 notices could not be delivered" in capsys.readouterr().err
    up = Receiver(port)
    try:
        assert 0 == cli.main(["notify", str(job)])
        assert {"T1", "T2"} == {n["request_id"] for n in up.accepted}
        assert 0 == cli.main(["notify", str(job)])  # nothing left: nothing sent again
        assert 2 == len(up.accepted)
    finally:
        up.stop()


def test_a_stale_timestamp_is_refused_and_the_notice_stays_undelivered(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    sandbox = sandbox_factory(generate_count=10)
    (tmp_path / "in.csv").write_text("ticket,email,phone,received_at\nT1,user1@example.com,,\n")
    receiver.script = [500]  # the run's one attempt fails
    job = _job(write_job, sandbox.url, receiver.url)
    assert 0 == e2e.run(job)
    late = notify.send_undelivered(job_mod.load(job), clock=lambda: time.time() - 3600)
    assert (0, 1) == (late.delivered, late.left)
    assert receiver.refused == ["stale"]
    again = notify.send_undelivered(job_mod.load(job))
    assert (1, 0) == (again.delivered, again.left)
    assert [n["request_id"] for n in receiver.accepted] == ["T1"]


# ---------------------------------------------------------------- the receiver's faults


def _pending(body: bytes = b'{"request_id":"T9"}') -> notify.Pending:
    return notify.Pending(seq=1, request_id="T9", idempotency_key="k" * 32, body=body)


def _deliverer(url: str, fake: FakeTime, **settings: Any) -> tuple[notify.Deliverer, list[Any]]:
    events: list[Any] = []
    options = {"max_attempts": 8, "max_time_s": 30.0, "timeout_s": 0.5, **settings}
    d = notify.Deliverer(
        Notify(url=url, **options),
        SECRET.encode(),
        0,
        events.extend,
        clock=fake.clock,
        sleep=fake.sleep,
        rand=lambda: 1.0,
    )
    return d, events


def _statuses(events: list[Any]) -> list[str]:
    return [json.loads(e.detail)["status"] for e in events]


def test_a_refused_connection_is_retried_with_backoff_within_the_time_bound() -> None:
    gone = Receiver()
    url = gone.url
    gone.stop()
    fake = FakeTime()
    d, events = _deliverer(url, fake, max_time_s=10.0)
    assert not d.deliver(_pending())
    d.close()
    assert fake.slept == [0.5, 1.0, 2.0, 4.0]  # doubling; the next (8 s) would pass 10 s
    assert sum(fake.slept) <= 10.0
    assert _statuses(events) == ["failed"] * 5


def test_a_500_is_retried_until_delivered(receiver: Receiver) -> None:
    receiver.script = [500, 503]
    fake = FakeTime()
    d, events = _deliverer(receiver.url, fake)
    assert d.deliver(_pending())
    d.close()
    assert _statuses(events) == ["failed", "failed", "delivered"]
    assert [json.loads(e.detail)["reason"] for e in events] == ["http_500", "http_503", "ok"]


def test_a_slow_receiver_times_out_and_the_retry_is_delivered(receiver: Receiver) -> None:
    receiver.slow.set()  # the first request waits past timeout_s
    fake = FakeTime()
    d, events = _deliverer(receiver.url, fake, timeout_s=0.2)
    assert d.deliver(_pending())
    receiver.release.set()
    d.close()
    assert [json.loads(e.detail)["reason"] for e in events] == ["timeout", "ok"]


def test_a_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [400]
    fake = FakeTime()
    d, events = _deliverer(receiver.url, fake)
    assert not d.deliver(_pending())
    d.close()
    assert fake.slept == [] and _statuses(events) == ["failed"]


def test_with_receipts_a_notice_cites_the_digest_of_a_receipt_that_checks(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    import hashlib

    sandbox = sandbox_factory(generate_count=10)
    assert 0 == cli.main(["keygen", "--out", str(tmp_path / "receipts.key")])
    (tmp_path / "in.csv").write_text("ticket,email,phone,received_at\nT1,user1@example.com,,\n")
    job = e2e.job(
        write_job,
        sandbox.url,
        input={"columns": {"email": "email", "phone": "phone"}},
        notify={"url": receiver.url, "max_attempts": 1},
        receipts={"signing_key_file": "receipts.key", "issuer": "ACME LLC, DPO office"},
    )
    assert 0 == e2e.run(job)
    [got] = receiver.accepted
    [file] = (tmp_path / "ledger-receipts").glob("*.json")
    assert got["receipt_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    public = str(tmp_path / "receipts.key.pub")
    assert 0 == cli.main(["check-receipt", str(file), "--public-key", public, "--job", str(job)])


def test_without_the_secret_the_run_still_finishes_and_notify_says_which_is_missing(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ERASURE_NOTIFY_SECRET")
    sandbox = sandbox_factory(generate_count=10)
    (tmp_path / "in.csv").write_text("ticket,email,phone,received_at\nT1,user1@example.com,,\n")
    job = _job(write_job, sandbox.url, receiver.url)
    assert 0 == e2e.run(job)  # queued, not sent: the run's exit code is its deletes'
    assert receiver.accepted == []
    capsys.readouterr()
    assert 78 == cli.main(["notify", str(job)])
    assert "ERASURE_NOTIFY_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("ERASURE_NOTIFY_SECRET", SECRET)
    assert 0 == cli.main(["notify", str(job)])
    assert [n["request_id"] for n in receiver.accepted] == ["T1"]
