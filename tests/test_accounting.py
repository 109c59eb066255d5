"""Every request accounted for (issue 12): the messy-file walk, replayed.

A cp1251 ``;`` export with unusable cells, duplicate tickets and a ticket with
no identifier; ``validate``; a run stopped by Ctrl-C; a resume; a later file
that fixes one cell. At each step the numbers add up in every command, every
ticket is in every report, and no raw value leaves the ``--rejects`` file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from erasure import partition
from erasure.accounting import Identity, LedgerAccount
from erasure.run import Options
from tests import e2e
from tests.sandbox_fixture import Sandbox, SandboxProcess

N = 120  # good tickets, one email each
BAD_EMAIL = "olga.mail.ru"  # no @
SCIENTIFIC = "7,9E+10"  # what Excel made of a phone number
BAD_DATE = "32.13.2024"
RAW = (BAD_EMAIL, SCIENTIFIC, BAD_DATE, "user0@example.com")


def _messy(path: Path) -> None:
    """N good tickets (T0 twice), one bad email, one lost phone, one bad date, one empty."""
    lines = ["Тикет;Почта;Телефон;Получено"]
    lines += [f"T{i};user{i}@example.com;;01.05.2024" for i in range(N)]
    lines.append("T0;USER0@example.com ;;01.05.2024")  # a duplicate ticket: folded
    lines.append(f"B1;{BAD_EMAIL};;01.05.2024")  # email_invalid
    lines.append(f"B2;;{SCIENTIFIC};01.05.2024")  # excel_scientific
    lines.append(f"B3;user{N}@example.com;;{BAD_DATE}")  # received_at_invalid, identifier kept
    lines.append("B4;;;01.05.2024")  # no_identifier
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))


def _erasure(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "erasure", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _status(job: Path) -> dict[str, Any]:
    done = _erasure("status", str(job), "--json")
    assert 0 == done.returncode, done.stderr
    info: dict[str, Any] = json.loads(done.stdout)
    account = LedgerAccount(**info["accounting"])
    assert all(i.holds for i in account.identities()), account.lines()
    assert info["total"] == account.pairs and info["invalid"] == account.unresolved
    return info


def _no_raw(folder: Path, *, but: Path) -> None:
    for path in folder.rglob("*"):
        if (path.is_file() and path != but and path.suffix != ".csv") or path.name == "report.csv":
            blob = path.read_bytes()
            for raw in RAW:
                assert raw.encode() not in blob, f"{raw!r} in {path.name}"


def test_the_messy_file_walk(write_job: Callable[..., Path], tmp_path: Path) -> None:
    _messy(tmp_path / "in.csv")
    with SandboxProcess("--generate", str(N + 1), "--latency-ms", "20") as sb:
        job = e2e.job(
            write_job,
            sb.url,
            input={
                "request_id_column": "Тикет",
                "received_at_column": "Получено",
                "columns": {"email": "Почта", "phone": "Телефон"},
            },
            run={"rate_per_s": 100, "concurrency": 4},
        )
        # validate: exit 1, and the arithmetic visibly adds up
        rejects = tmp_path / "fix" / "rejects.csv"
        checked = _erasure("validate", str(job), "--rejects", str(rejects))
        assert 1 == checked.returncode, checked.stderr
        out = checked.stdout
        assert "input rows 125 = rows with an identifier 124 + rows with no identifier 1" in out
        assert "identifier cells 124 = valid 122 + invalid cells 2 + " in out
        assert "valid 122 = (request, identifier) pairs 121 + duplicates folded 1" in out
        assert (
            "(request, identifier) pairs 121 = already final in the ledger 0 + to send 121" in out
        )
        assert (
            "invalid records 4: email_invalid 1, excel_scientific 1, no_identifier 1,"
            " received_at_invalid 1"
        ) in out
        assert "format the column as text and export again" in out
        assert "'Телефон'" in out and "without a deadline" in out
        assert not any(raw in out + checked.stderr for raw in RAW)
        assert SCIENTIFIC in rejects.read_text(encoding="utf-8-sig")  # only there

        # a run stopped by Ctrl-C, then resumed
        proc = subprocess.Popen(
            [sys.executable, "-m", "erasure", "run", str(job), "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ},
        )
        deadline = time.monotonic() + 30
        while sb.stats(per_profile=False)["erased_profiles"] < 10:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert 75 == proc.returncode, err
        said = [json.loads(line) for line in err.splitlines()]
        [line] = [e for e in said if e["event"] == "erasure.run.interrupted"]
        assert "Ctrl-C again stops now" in line["message"] and line["wait_s"] == 3.0
        started = next(e for e in said if e["event"] == "erasure.run.started")
        assert (started["job"], started["ledger"]) == (str(job), str(tmp_path / "ledger.sqlite"))
        middle = _status(job)
        assert middle["invalid"] == 4 and 0 < middle["erased"] < 121

        resumed = _erasure("run", str(job), "--no-progress")
        assert 1 == resumed.returncode, resumed.stderr  # all erased, but the input has invalid rows
        again = _erasure("run", str(job), "--no-progress")
        assert 1 == again.returncode
        ledger = tmp_path / "ledger.sqlite"
        invalid = e2e.events(ledger, "SELECT * FROM events WHERE kind = 'invalid'")
        assert 4 == len(invalid)  # once per input row and column, whatever the resumes
        info = _status(job)
        acc = info["accounting"]
        assert (acc["pairs"], acc["erased"], acc["requests"]) == (121, 121, 124)
        # B1, B2 and B4 have no usable identifier at all; B3 is erased, its only received
        # date unusable: complete, its deadline unknown
        assert (acc["complete"], acc["incomplete"]) == (121, 3)
        assert info["deadline_unknown"] == acc["deadline_unknown"] == 1
        assert acc["incomplete_reasons"] == info["incomplete_reasons"]
        assert acc["incomplete_reasons"] == {
            "no_identifier": 3,
            "held": 0,
            "cancelled": 0,
            "rejected": 0,
            "invalid": 0,
            "open": 0,
        }
        assert sb.stats(per_profile=False)["erased_profiles"] == N + 1  # each once

        # every ticket in every report, the invalid ones as rows, no raw value anywhere
        for suffix in (".csv", ".xlsx", ".html"):
            done = _erasure("report", str(job), "--out", str(tmp_path / f"report{suffix}"))
            assert 0 == done.returncode, done.stderr
        csv = pl.read_csv(tmp_path / "report.csv", infer_schema=False)
        tickets = {f"T{i}" for i in range(N)} | {"B1", "B2", "B3", "B4"}
        assert set(csv["request_id"].to_list()) == tickets
        bad = csv.filter(pl.col("outcome") == "invalid")
        assert sorted(bad["reason"].to_list()) == [
            "email_invalid",
            "excel_scientific",
            "no_identifier",
            "received_at_invalid",
        ]
        assert bad["key"].is_null().all()
        erased = csv.filter(pl.col("outcome") == "erased")
        assert erased["http_status"].is_not_null().all() and (erased["error_code"] == "0").all()
        xlsx = pl.read_excel(tmp_path / "report.xlsx", sheet_name="Identifiers")
        assert set(xlsx["request_id"].to_list()) == tickets
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert all(f">{t}<" in page for t in tickets)
        assert "3 of 124 requests are incomplete" in page
        one = _erasure("status", str(job), "--request-id", "B2")
        assert "invalid: row 124 column Телефон: excel_scientific" in one.stdout
        _no_raw(tmp_path, but=rejects)

        # a later file fixes B1's email: its invalid record is resolved
        (tmp_path / "fix.csv").write_bytes(
            "Тикет;Почта;Телефон;Получено\r\nB1;olga@example.com;;01.05.2024\r\n".encode("cp1251")
        )
        fixed = _erasure("run", str(job), "--no-progress", "--input", str(tmp_path / "fix.csv"))
        assert 0 == fixed.returncode, fixed.stderr
        resolved = e2e.events(ledger, "SELECT * FROM events WHERE kind = 'resolved'")
        assert 1 == len(resolved) and resolved[0]["request_id"] == "B1"
        after = _status(job)
        assert after["invalid"] == 3 and after["accounting"]["resolved"] == 1

        # a night stopped with another file's work left; then a night of yet another file
        # while the stopped night's file is gone: named, exit 1, never 0; then it is back
        other = tmp_path / "c.csv"
        other.write_bytes(
            ("Тикет;Почта;Телефон;Получено\r\n" + "".join(
                f"C{i};nobody{i}@example.org;;01.05.2024\r\n" for i in range(20)
            )).encode("cp1251")
        )  # fmt: skip
        # no answer comes: only the time budget ends the night (no preflight to hang on)
        text = job.read_text(encoding="utf-8")
        job.write_text(text.replace("[run]\n", "[run]\npreflight = false\n", 1), "utf-8")
        sb.configure(hang=1.0)
        stopped = _erasure(
            "run", str(job), "--no-progress", "--input", str(other), "--max-duration", "1s"
        )
        assert 75 == stopped.returncode, stopped.stderr
        assert "keep_input" in stopped.stderr and "c.csv" in stopped.stderr
        sb.configure(hang=0.0)
        kept = other.read_bytes()
        other.unlink()
        late = tmp_path / "d.csv"
        late.write_bytes(
            "Тикет;Почта;Телефон;Получено\r\nD1;late@example.org;;01.05.2024\r\n".encode("cp1251")
        )
        named = _erasure("run", str(job), "--no-progress", "--input", str(late))
        assert 1 == named.returncode, named.stderr
        assert "c.csv" in named.stderr and "open_elsewhere" in named.stderr
        gone = _status(job)
        assert [(f["file"], f["open"]) for f in gone["open_elsewhere"]] == [("c.csv", 20)]
        assert gone["pending"] == 20 and gone["accounting"]["incomplete_reasons"]["open"] == 20
        other.write_bytes(kept)
        back = _erasure("run", str(job), "--no-progress", "--input", str(late))
        assert 0 == back.returncode, back.stderr
        done = _status(job)
        assert done["open_elsewhere"] == [] and done["pending"] == 0
        assert done["accounting"]["incomplete_reasons"]["open"] == 0


def test_an_identity_that_does_not_hold_says_so() -> None:
    good = Identity(("rows", 3), (("with_identifier", 2), ("blank", 1)))
    bad = Identity(("rows", 3), (("with_identifier", 1), ("blank", 1)))
    assert good.holds and not bad.holds
    assert bad.text() == "input rows 3 = rows with an identifier 1 + blank rows 1"


@pytest.mark.parametrize("n", [0, 1])
def test_a_ledger_account_that_does_not_add_up_is_a_bug(n: int) -> None:
    fields: dict[str, Any] = dict.fromkeys(LedgerAccount.__slots__, 0)
    reasons = dict.fromkeys(partition.REASONS, 0) | {"open": 1}
    fields |= {"pairs": 1, "pending": n, "requests": 1, "incomplete": 1}
    fields["incomplete_reasons"] = reasons
    if n:
        assert LedgerAccount(**fields).check().verdict.startswith("1 of 1 requests")
    else:
        with pytest.raises(AssertionError, match="does not add up"):
            LedgerAccount(**fields).check()


def test_a_heartbeat_while_requests_hang(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A slow service: heartbeat lines keep coming, counting what is done and in flight."""
    sandbox = sandbox_factory(generate_count=4, latency_ms=300)
    e2e.emails_csv(tmp_path / "in.csv", range(4))
    job = e2e.job(write_job, sandbox.url, run={"concurrency": 1, "preflight": False})
    assert 0 == e2e.run_with(job, Options(heartbeat_s=0.1, install_signal_handlers=False))
    beats = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if '"erasure.run.heartbeat"' in line
    ]
    assert len(beats) >= 3
    assert {b["of"] for b in beats} == {4}
    assert any(b["in_flight"] == 1 for b in beats)
