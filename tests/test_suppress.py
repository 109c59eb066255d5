"""`[suppress]`: erased (and not found) people onto the sandbox's suppression lists.

End to end against the sandbox: the list holds exactly the erased and not
found people's emails and phones, once each, after a run killed twice and
resumed; with `[suppress]` off no suppression call is made; its faults
(429, 5xx, a hang, a token without the right) never stop a delete, never
exit 77, and the next run adds what failed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from erasure.run import Options
from erasure.run.retry import Backoff
from tests import e2e
from tests.sandbox_fixture import Sandbox, SandboxProcess

FAST = Options(backoff=Backoff(max_attempts=8).instant(), install_signal_handlers=False)


def _people(path: Path, n: int, absent: int = 0) -> tuple[set[str], set[str]]:
    """A request file: n sandbox people (every third with a phone too: another
    profile's, user 1000 + i, so that both are erased) and ``absent`` addresses the
    sandbox never held; the emails and phones it names."""
    lines = ["ticket,email,phone"]
    emails: set[str] = set()
    phones: set[str] = set()
    for i in range(n):
        phone = f"+7900{1000 + i:07d}" if i % 3 == 0 else ""
        lines.append(f"T{i},user{i}@example.com,{phone}")
        emails.add(f"user{i}@example.com")
        if phone:
            phones.add(phone)
    for j in range(absent):
        lines.append(f"A{j},gone{j}@example.org,")
        emails.add(f"gone{j}@example.org")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return emails, phones


def _lists(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(url + "/__sandbox/suppress").json()
    return answer


def _configure(url: str, **settings: object) -> None:
    httpx.post(url + "/__sandbox/suppress", json=settings).raise_for_status()


def _job(
    write_job: Callable[..., Path],
    url: str,
    *,
    api: dict[str, object] | None = None,
    run: dict[str, object] | None = None,
    **suppress: object,
) -> Path:
    sections: dict[str, Any] = {
        "input": {"columns": {"email": "email", "phone": "phone"}},
        "api": api or {},
        "run": run or {},
    }
    if suppress:
        sections["suppress"] = suppress
    return e2e.job(write_job, url, **sections)


def _outcomes(ledger: Path) -> int:
    with sqlite3.connect(ledger) as db:
        try:
            (n,) = db.execute("SELECT count(*) FROM events WHERE kind = 'outcome'").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(n)


def _kill_after(job: Path, ledger: Path, outcomes: int) -> None:
    """Start `erasure run`, SIGKILL it once the ledger holds ``outcomes`` outcome events."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "erasure", "run", str(job), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _outcomes(ledger) < outcomes and proc.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)  # waiting for another process's progress: no event to wait on
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


@pytest.mark.slow
def test_killed_twice_and_resumed_the_list_holds_each_person_once(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    n, absent = 240, 12
    with SandboxProcess("--generate", "1300", "--latency-ms", "10", "--seed", "3") as sb:
        emails, phones = _people(tmp_path / "in.csv", n, absent)
        job = _job(
            write_job,
            sb.url,
            email_list_id=7,
            phone_list_id=8,
            include_not_found=True,
            batch_size=50,
            run={"rate_per_s": 80, "concurrency": 4},
        )
        ledger = tmp_path / "ledger.sqlite"
        _kill_after(job, ledger, 40)
        # killed among the deletes: the lists were checked (the preflight), nothing added yet
        assert set(_lists(sb.url)["calls"]) == {"email_check", "phone_check"}
        _kill_after(job, ledger, 150)
        done = subprocess.run(
            [sys.executable, "-m", "erasure", "run", str(job), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 0 == done.returncode, done.stderr[-2000:]
        state = _lists(sb.url)
        assert set(state["lists"]["7"]["emails"]) == emails
        assert set(state["lists"]["8"]["phones"]) == phones
        assert set(state["lists"]["7"]["emails"].values()) == {1}  # each sent once
        assert set(state["lists"]["8"]["phones"].values()) == {1}
        assert not any(name.endswith("_remove") for name in state["calls"])
        # each run's preflight checked each list once, before its deletes
        assert state["calls"]["email_check"] == 3 and state["calls"]["phone_check"] == 3
        # each addition an event, keyed: never the address itself
        rows = e2e.events(ledger, "SELECT * FROM events WHERE kind = 'suppression'")
        assert len(rows) == len(emails) + len(phones)
        text = json.dumps([dict(r) for r in rows])
        assert "@example" not in text and "+7900" not in text
        # a later run adds nothing again
        assert 0 == e2e.run(job)
        assert _lists(sb.url)["calls"]["emails_add"] == state["calls"]["emails_add"]


def test_with_suppress_off_no_suppression_call_is_made(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 10)
    assert 0 == e2e.run(_job(write_job, sandbox.url))
    assert _lists(sandbox.url)["calls"] == {}
    assert {"erased": 14} == e2e.outcome_counts(tmp_path / "ledger.sqlite")


def test_not_found_people_are_added_only_with_include_not_found(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 5, absent=3)
    assert 0 == e2e.run_with(_job(write_job, sandbox.url, email_list_id=7), FAST)
    listed = set(_lists(sandbox.url)["lists"]["7"]["emails"])
    assert listed == {f"user{i}@example.com" for i in range(5)}


@pytest.mark.parametrize("fault", [{"fail_429": 0.4}, {"fail_5xx": 0.4}], ids=["429", "5xx"])
def test_transient_faults_are_retried_until_everyone_is_listed(
    fault: dict[str, float],
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(generate_count=1100)
    emails, phones = _people(tmp_path / "in.csv", 30)
    _configure(sandbox.url, seed=7, **fault)
    job = _job(write_job, sandbox.url, email_list_id=7, phone_list_id=8, batch_size=4)
    assert 0 == e2e.run_with(job, FAST)
    state = _lists(sandbox.url)
    assert sum(state["fired"].values()) > 0
    assert set(state["lists"]["7"]["emails"]) == emails
    assert set(state["lists"]["8"]["phones"]) == phones


def test_a_hang_or_a_refused_token_never_stops_the_deletes_and_the_next_run_adds(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=1100)
    emails, _ = _people(tmp_path / "in.csv", 6)
    job = _job(write_job, sandbox.url, email_list_id=7, api={"timeout_s": 0.3})
    once = Options(backoff=Backoff(max_attempts=1).instant(), install_signal_handlers=False)
    _configure(sandbox.url, hang=1, hang_s=5)
    assert 1 == e2e.run_with(job, once)  # a suppression failure: exit 1, never 77
    assert {"erased": 8} == e2e.outcome_counts(tmp_path / "ledger.sqlite")
    assert _lists(sandbox.url)["lists"]["7"]["emails"] == {}
    _configure(sandbox.url, hang=0, deny_token=True)
    assert 1 == e2e.run_with(job, once)
    statuses = [
        json.loads(r["detail"])["status"]
        for r in e2e.events(
            tmp_path / "ledger.sqlite", "SELECT detail FROM events WHERE kind='suppression'"
        )
    ]
    assert statuses.count("check_failed") == 12  # six emails, twice (the hang, then the 403)
    _configure(sandbox.url, deny_token=False)
    assert 0 == e2e.run_with(job, once)
    assert set(_lists(sandbox.url)["lists"]["7"]["emails"]) == emails


def test_the_report_says_which_list_keeps_the_address(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    import csv

    from erasure import cli

    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 3, absent=1)
    job = _job(write_job, sandbox.url, email_list_id=7)
    assert 0 == e2e.run_with(job, FAST)
    out = tmp_path / "report.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(out)])
    with out.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    said = {(r["request_id"], r["matching"], r["outcome"]): r["suppressed"] for r in rows}
    assert said[("T0", "email", "erased")] == "kept on suppression list 7"
    assert said[("T0", "phone", "erased")] == ""  # no phone list in this job
    assert said[("A0", "email", "not_found")] == ""  # include_not_found is off


def test_the_after_delete_events_are_read_by_index_not_by_scanning_the_ledger(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 2)
    assert 0 == e2e.run_with(_job(write_job, sandbox.url, email_list_id=7), FAST)
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        for kind in ("suppression", "notice"):
            plan = db.execute(
                f"EXPLAIN QUERY PLAN SELECT key FROM events WHERE kind = '{kind}'"
            ).fetchall()
            assert f"USING INDEX events_{kind}" in plan[0][3]


def test_the_sandbox_command_line_makes_lists_and_suppression_faults() -> None:
    with SandboxProcess(
        "--generate", "1", "--suppression-lists", "3", "--suppress-fail-5xx", "1"
    ) as sb:
        assert {"3", "7", "8"} == set(_lists(sb.url)["lists"])
        answer = httpx.post(
            sb.url + "/api/v1.1/suppresses/emails_add",
            json={"id": 3, "emails": ["a@example.com"]},
            headers={"Authorization": f"Bearer {sb.token}"},
        )
        assert (500, 500) == (answer.status_code, answer.json()["error"])
        assert _lists(sb.url)["lists"]["3"]["emails"] == {}
    bad = subprocess.run(
        [sys.executable, "-m", "erasure.sandbox", "--port", "0", "--suppress-hang", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 64 == bad.returncode and "--suppress-hang: expected 0 to 1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_act_says_the_addresses_are_kept_on_the_list(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    from erasure import cli

    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 3)
    act = {
        "operator": "ACME LLC, 1 Main St",
        "processor": "Altcraft LLC, on the operator's instructions",
        "system": "Altcraft Platform",
        "categories": ["email address"],
        "commission": ["I. Ivanov, DPO"],
        "language": "en",
    }
    job = e2e.job(
        write_job,
        sandbox.url,
        input={"columns": {"email": "email", "phone": "phone"}},
        suppress={"email_list_id": 7},
        act=act,
    )
    assert 0 == e2e.run_with(job, FAST)
    page = tmp_path / "act.html"
    assert 0 == cli.main(["act", str(job), "--out", str(page), "--run", "1"])
    text = page.read_text(encoding="utf-8")
    assert "Kept on an Altcraft suppression list" in text
    assert "the addresses (phones) of 3 destroyed profiles are kept on suppression list 7" in text
    assert "@example.com" not in text


def test_people_carried_from_an_earlier_file_are_listed_too(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """A night stopped by its time budget suppresses nothing; the next night, with another
    file, reads the stopped night's file again for its open pairs (erasure.carry) and
    suppresses every person of it who is erased: those it finishes tonight, and those the
    stopped night erased (the ledger keeps no address: only that file has them)."""
    sandbox = sandbox_factory(generate_count=1100)
    emails, phones = _people(tmp_path / "a.csv", 30)
    # 40 deletes at 5 a second need 8 s: a 4 s budget stops the night with work left, and
    # leaves it time to erase some even on a loaded machine (1 s once erased none under load)
    job = _job(write_job, sandbox.url, run={"rate_per_s": 5}, email_list_id=7, phone_list_id=8)
    assert 75 == e2e.run(job, "--input", str(tmp_path / "a.csv"), "--max-duration", "4s")
    erased_first = {p.email for p in sandbox.profiles if p.deletes}
    assert erased_first and not _lists(sandbox.url)["lists"]["7"]["emails"]
    (tmp_path / "b.csv").write_text("ticket,email,phone\nB1,user500@example.com,\n", "utf-8")
    fast = _job(write_job, sandbox.url, email_list_id=7, phone_list_id=8)
    assert 0 == e2e.run(fast, "--input", str(tmp_path / "b.csv"))
    lists = _lists(sandbox.url)["lists"]
    assert sorted(lists["7"]["emails"]) == sorted(emails | {"user500@example.com"})
    assert sorted(lists["8"]["phones"]) == sorted(phones)


def test_a_receipt_says_which_list_keeps_the_address(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """The signed receipt says "the address is kept on suppression list N" (JSON and page),
    and check-receipt finds it valid, against the ledger too."""
    from erasure import cli
    from erasure.receipts.html import extract_json

    sandbox = sandbox_factory(generate_count=1100)
    _people(tmp_path / "in.csv", 4)
    job = _job(write_job, sandbox.url, email_list_id=7)
    text = job.read_text() + '[receipts]\nsigning_key_file = "r.key"\nissuer = "Test DPO"\n'
    job.write_text(text, encoding="utf-8")
    assert 0 == cli.main(["keygen", "--out", str(tmp_path / "r.key")])
    assert 0 == e2e.run(job)
    for name in ("T0.json", "T0.html", "T1.json"):
        out = tmp_path / name
        assert 0 == cli.main(["receipt", str(job), "--request-id", name[:2], "--out", str(out)])
        pub = str(tmp_path / "r.key.pub")
        assert 0 == cli.main(["check-receipt", str(out), "--public-key", pub, "--job", str(job)])
    t0 = json.loads(extract_json((tmp_path / "T0.html").read_bytes()))
    said = {c["matching"]: c.get("suppressed") for c in t0["receipt"]["identifiers"]}
    # T0 has an email (list 7) and a phone (no phone list): only the email is kept
    assert said == {"email": "the address is kept on suppression list 7", "phone": None}
    assert "Kept from coming back" in (tmp_path / "T0.html").read_text(encoding="utf-8")
    t1 = json.loads((tmp_path / "T1.json").read_text(encoding="utf-8"))
    assert [c.get("suppressed") for c in t1["receipt"]["identifiers"]] == [
        "the address is kept on suppression list 7"
    ]
