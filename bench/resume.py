"""Resume start-up: a 1,000,000-event ledger and a 1,000,000-row input.

    .venv/bin/python bench/resume.py [--events 1000000] [--rows 1000000]

Builds, in a temporary folder, a request file of ``--rows`` emails no
profile has and a ledger of ``--events`` events written with
``erasure.ledger.Ledger.append`` in batches: one earlier run that finished
the first ``events // 3`` of those emails, each with the events a real run
writes (``planned``, ``sent``, then ``outcome`` not_found), under the keys
the intake computes (``Keyer.keys`` over ``message_prefix(1, "email", None,
None)``). Then, against a zero-latency sandbox on core 1 (erasure on core 0):

- ``erasure status`` on that ledger: wall time;
  (erasure is not pinned to a core here: start-up is intake and planning,
  which use both cores while the sandbox idles)
- ``erasure run``: the time from the fork to the arrival of the first
  request (the preflight) and of the first real delete at the sandbox; the
  run is then killed (SIGKILL: what happens after is not start-up);
- the same run with an empty ledger, for comparison.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common as c

TARGET_S = 5.0  # seconds from process start to the first request


def build_ledger(path: Path, rows: int, done: int) -> float:
    """A ledger whose one run finished the first ``done`` emails; returns seconds taken."""
    from erasure.keys import Keyer, message_prefix
    from erasure.ledger import Event, Kind, Ledger

    t0 = time.perf_counter()
    keyer = Keyer(c.LEDGER_KEY.encode())
    prefix = message_prefix(1, "email", None, None)
    started = {
        "settings": {"concurrency": 64, "rate_per_s": 1000.0},
        "input": {"path": "in.csv", "rows": rows, "sha256": "0" * 64, "rejected": 0},
        "plan": {"pairs": rows, "keys": rows, "already_done": 0, "in_doubt": 0},
    }
    step = 10_000
    with Ledger(path, keyer) as ledger:
        ledger.append([Event(Kind.RUN_STARTED, 1, detail=json.dumps(started, sort_keys=True))])
        for lo in range(0, done, step):
            values = [f"nobody{i}@example.org" for i in range(lo, min(lo + step, done))]
            keys = keyer.keys(prefix, values)
            events = []
            for key in keys:
                events.append(Event(Kind.PLANNED, 1, key=key, db_id=1, matching="email"))
                events.append(Event(Kind.SENT, 1, key=key, attempt=1))
            for key in keys:
                events.append(
                    Event(
                        Kind.OUTCOME,
                        1,
                        key=key,
                        attempt=1,
                        outcome="not_found",
                        in_doubt=0,
                        error_code=404,
                        error_text="Profile not found",
                        http_status=404,
                    )
                )
            ledger.append(events)
        finished = {"exit_code": 75, "requests": done, "stop_reason": "deadline"}
        ledger.append([Event(Kind.RUN_FINISHED, 1, detail=json.dumps(finished))])
    return time.perf_counter() - t0


def first_requests(sb: c.Sandbox, job: Path, timeout_s: float = 120) -> dict[str, Any]:
    """Start ``erasure run``; kill it once two requests have arrived; their delays."""
    before = sb.stats()["requests"]

    def watch(proc: subprocess.Popen[bytes]) -> None:
        def poll() -> None:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                if sb.stats()["requests"] >= before + 2:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)

        threading.Thread(target=poll, daemon=True).start()

    m = c.measure(c.erasure_run(job), cpu=None, on_start=watch, timeout_s=timeout_s + 30)
    arrivals = sb.arrivals(m.started_at)[:2]
    started = m.event("erasure.run.started") or {}
    if len(arrivals) < 2:
        raise SystemExit(f"no request arrived (exit {m.returncode}): {m.stderr[-2000:]}")
    return {
        "preflight_s": arrivals[0] - m.started_at,
        "first_delete_s": arrivals[1] - m.started_at,
        "already_done": started.get("already_done"),
        "to_send": started.get("to_send"),
        "maxrss_mib": m.maxrss_mib,
        "command": m.command,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    done = min(args.events // 3, args.rows)
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        folder = Path(tmp)
        c.write_emails(folder / "in.csv", args.rows)
        build_s = build_ledger(folder / "ledger.sqlite", args.rows, done)
        size_mib = (folder / "ledger.sqlite").stat().st_size / 2**20
        with c.Sandbox() as sb:
            job = c.write_job(folder, sb.url)
            fresh = c.write_job(folder, sb.url, name="fresh.toml", ledger="fresh.sqlite")
            status_cmd = [c.PYTHON, "-m", "erasure", "status", str(job)]
            status = c.measure(status_cmd, cpu=None).check()
            resumed = first_requests(sb, job)
            empty = first_requests(sb, fresh)
            names = {"TMP": str(folder), "URL": sb.url}
            commands = [
                c.shown(x, **names)
                for x in (status.command, resumed["command"], empty["command"], sb.command)
            ]
    if resumed["already_done"] != done:
        raise SystemExit(f"the intake's keys do not match the ledger's: {resumed}")
    ok = resumed["preflight_s"] <= TARGET_S
    ok_delete = resumed["first_delete_s"] <= TARGET_S
    c.heading(
        "Resume start-up",
        f"a ledger of {3 * done + 3:,} events ({done:,} emails finished by an earlier run, "
        "planned + sent + outcome each, plus the ledger's creation and the run's start and "
        f"end; {size_mib:,.0f} MiB, "
        f"built with Ledger.append in {build_s:.0f} s) and an input of {args.rows:,} rows "
        f"({done:,} already done, {args.rows - done:,} to send). Times from the fork of the "
        "process to the arrival at the sandbox. erasure is not pinned here (start-up is intake "
        "and planning, which polars spreads over both cores, while the sandbox idles); the "
        f"sandbox is on core {c.SANDBOX_CPU}. Load average {c.load()}.",
    )
    print(
        c.table(
            ("figure", "measured", "target", "met?"),
            [
                ("`erasure status` on the ledger, wall", f"{status.wall_s:.2f} s", "", "n/a"),
                (
                    "first request (the preflight) after process start",
                    f"{resumed['preflight_s']:.2f} s",
                    f"<= {TARGET_S:g} s",
                    c.met(ok),
                ),
                (
                    "first real delete after process start",
                    f"{resumed['first_delete_s']:.2f} s",
                    f"<= {TARGET_S:g} s",
                    c.met(ok_delete),
                ),
                (
                    "peak RSS of that run until killed",
                    f"{resumed['maxrss_mib']:,.0f} MiB",
                    "",
                    "n/a",
                ),
                (
                    "same input, empty ledger: first request / first delete",
                    f"{empty['preflight_s']:.2f} s / {empty['first_delete_s']:.2f} s",
                    "",
                    "n/a",
                ),
            ],
        )
    )
    print("\nCommands (`erasure run` is killed once two requests have arrived):\n")
    for label, command in zip(
        ("status", "run", "run, empty ledger", "sandbox"), commands, strict=True
    ):
        print(f"- {label}: `{command}`")
    print()
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            record = {
                "figure": f"resume with a {3 * done + 3:,}-event ledger and "
                f"{args.rows:,}-row input: first request",
                "value": f"{resumed['preflight_s']:.2f} s (first real delete "
                f"{resumed['first_delete_s']:.2f} s)",
                "target": f"<= {TARGET_S:g} s",
                "met": ok and ok_delete,
                "script": "resume",
            }
            f.write(json.dumps(record) + "\n")
            record = {
                "figure": f"erasure status on the {3 * done + 3:,}-event ledger",
                "value": f"{status.wall_s:.2f} s",
                "target": "",
                "met": None,
                "script": "resume",
            }
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
