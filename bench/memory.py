"""Peak memory: plan 10,000,000 pending identifiers and send the first 200,000.

    .venv/bin/python bench/memory.py [--ids 10000000] [--send 200000] [--profile auto|always|never]

Writes a request file of ``--ids`` emails no profile has (the sandbox answers
not found), starts ``erasure run`` (the CLI, ledger on, concurrency 64,
``rate_per_s`` 1,000,000; erasure on core 0, the sandbox on core 1), and
kills it (SIGKILL) once ``--send`` deletes have arrived at the sandbox: the
whole file is read, normalised, keyed and planned before the first request,
so the run holds the full plan while it sends. The peak RSS is the child's
``ru_maxrss`` (``os.wait4``); the RSS is also sampled from ``/proc`` every
half second, to show when memory is taken.

When the peak passes 1.5 GiB (or with ``--profile always``) a second child
repeats the intake and the plan in-process over the first ``--profile-ids``
rows and reports the RSS after each step and the size of each polars frame
(``estimated_size``), so that the table says where the memory goes.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common as c

TARGET_MIB = 1.5 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--send", type=int, default=200_000)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    parser.add_argument(
        "--profile-ids", type=int, default=2_000_000, help="rows of the profile's input (2000000)"
    )
    parser.add_argument("--timeout-s", type=float, default=600, help="give up after (600)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child-profile", metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_profile:
        print(json.dumps(profile(args.child_profile)))
        return 0
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        c.write_emails(folder / "in.csv", args.ids)
        write_s = time.perf_counter() - t0
        size_mib = (folder / "in.csv").stat().st_size / 2**20
        with c.Sandbox(record=False) as sb:
            job = c.write_job(folder, sb.url)
            samples: list[tuple[float, float, int]] = []  # seconds, RSS MiB, requests
            m = c.measure(
                c.erasure_run(job),
                on_start=lambda proc: watch(proc, sb, args.send, args.timeout_s, samples),
                timeout_s=args.timeout_s + 60,
            )
            sent = sb.stats()["requests"] - 1  # the preflight
            names = {"TMP": str(folder), "URL": sb.url}
            command = c.shown(m.command, **names)
            sandbox = c.shown(sb.command, **names)
        started = m.event("erasure.run.started") or {}
        prof = None
        if args.profile == "always" or (args.profile == "auto" and m.maxrss_mib > TARGET_MIB):
            n = min(args.profile_ids, args.ids)
            c.write_emails(folder / "profile.csv", n)
            pjob = c.write_job(folder, sb.url, name="profile.toml", input_path="profile.csv")
            p = c.measure([c.PYTHON, __file__, "--child-profile", str(pjob)], timeout_s=900)
            prof = json.loads(p.check().stdout) | {"rows": n}
    first = next((s for s in samples if s[2] >= 1), None)
    ok = m.maxrss_mib <= TARGET_MIB and sent >= args.send
    c.heading(
        f"Peak memory: plan {args.ids:,}, send the first {args.send:,}",
        f"{args.ids:,} emails no profile has ({size_mib:,.0f} MiB CSV, written in "
        f"{write_s:.0f} s); `erasure run` killed once {args.send:,} deletes had arrived "
        f"(planned: {started.get('to_send', '?'):,} to send). Load average {c.load()}.",
    )
    rows = [
        (
            "peak RSS of `erasure run` (ru_maxrss)",
            f"{m.maxrss_mib:,.0f} MiB",
            f"<= {TARGET_MIB:,.0f} MiB",
            c.met(ok),
        ),
        (
            "deletes sent before the kill",
            f"{sent:,}",
            f">= {args.send:,}",
            c.met(sent >= args.send),
        ),
        (
            "process start to first request (intake + plan of all)",
            f"{first[0]:.1f} s" if first else "-",
            "",
            "n/a",
        ),
        ("RSS when the first request arrived", f"{first[1]:,.0f} MiB" if first else "-", "", "n/a"),
        ("RSS at the kill", f"{samples[-1][1]:,.0f} MiB" if samples else "-", "", "n/a"),
        ("wall time to the kill", f"{m.wall_s:.0f} s", "", "n/a"),
    ]
    print(c.table(("figure", "measured", "target", "met?"), rows))
    print(f"\nCommands:\n\n- `{command}` (SIGKILL after {args.send:,} arrivals)")
    print(f"- sandbox: `{sandbox}`\n")
    if samples:
        step = max(1, len(samples) // 12)
        print("RSS over time (sampled from /proc):\n")
        print(
            c.table(
                ("s since start", "RSS MiB", "requests arrived"),
                [(f"{t:.1f}", f"{r:,.0f}", f"{n:,}") for t, r, n in samples[::step]],
            )
        )
        print()
    if prof is not None:
        print_profile(prof, args.ids)
    if args.json_out:
        with args.json_out.open("a", encoding="utf-8") as f:
            record = {
                "figure": f"peak RSS planning {args.ids:,} and sending {args.send:,}",
                "value": f"{m.maxrss_mib:,.0f} MiB",
                "target": f"<= {TARGET_MIB:,.0f} MiB",
                "met": ok,
                "script": "memory",
            }
            f.write(json.dumps(record) + "\n")
    return 0


def watch(
    proc: subprocess.Popen[bytes],
    sb: c.Sandbox,
    send: int,
    timeout_s: float,
    samples: list[tuple[float, float, int]],
) -> None:
    """Sample the child's RSS; SIGKILL it once ``send`` deletes (after the preflight) arrived."""
    base = sb.stats()["requests"]
    t0 = time.monotonic()

    def poll() -> None:
        while proc.poll() is None and time.monotonic() - t0 < timeout_s:
            try:
                rss = c.rss_mib(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            arrived = sb.stats()["requests"] - base
            samples.append((time.monotonic() - t0, rss, arrived))
            if arrived >= send + 1:
                break
            time.sleep(0.5 if arrived == 0 else 0.1)
        proc.send_signal(signal.SIGKILL)

    threading.Thread(target=poll, daemon=True).start()


# ---------------------------------------------------------------- where memory goes


def profile(job_path: str) -> dict[str, Any]:
    """Intake and plan in this process; RSS and frame sizes after each step (MiB)."""
    import gc

    import polars as pl

    from erasure import intake
    from erasure import job as job_mod
    from erasure.run import make_plan

    def now() -> dict[str, float]:
        gc.collect()
        return {
            "rss": c.rss_mib_self(),
            "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    out: dict[str, Any] = {"imports": now()}
    job = job_mod.load(job_path)
    keyer = job.keyer()
    t0 = time.perf_counter()
    data = intake.read(job, keyer)
    out["intake"] = {
        **now(),
        "s": time.perf_counter() - t0,
        "items": data.items.estimated_size("mb"),
        "items_by_column": by_column(data.items),
    }
    empty = pl.DataFrame(schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String})
    t0 = time.perf_counter()
    plan = make_plan(data.items, empty, set())
    out["plan"] = {
        **now(),
        "s": time.perf_counter() - t0,
        "work": plan.work.estimated_size("mb"),
        "pending": plan.pending.estimated_size("mb"),
        "work_by_column": by_column(plan.work),
    }
    del data  # as `erasure run` does: the items and the pending pairs go
    plan = plan.without_pending()
    out["without_intake_frame"] = now()
    rows = plan.work.slice(0, 64).iter_rows(named=True)
    first = next(rows)
    out["row_example_bytes"] = sum(sys.getsizeof(v) for v in first.values())
    return out


def by_column(frame: Any) -> dict[str, float]:
    """Each column's ``estimated_size`` (MiB), one column at a time without changing the frame.

    ``frame[name]`` would turn a literal column (one value for every row,
    which the intake and the plan use for what the file does not vary) into
    a full one, for good, and change the RSS it is meant to explain.
    """
    return {k: frame.lazy().select(k).collect().estimated_size("mb") for k in frame.columns}


def print_profile(p: dict[str, Any], ids: int) -> None:
    scale = ids / p["rows"]
    print(
        f"Where the memory goes: intake and plan of the first {p['rows']:,} rows repeated "
        "in-process (not pinned), RSS after each step. The frames share columns (the work "
        "holds the items' keys and values, the pending pairs are the items when none is "
        "done), so their sizes overlap; a column with one value for every row counts as "
        f"nothing. They grow linearly with the rows: at {ids:,} rows about "
        f"{p['intake']['items'] * scale:,.0f} MiB (items), {p['plan']['work'] * scale:,.0f} MiB "
        f"(work) and {p['plan']['pending'] * scale:,.0f} MiB (pending); `erasure run` keeps "
        "the work for the whole run.\n"
    )
    rows = [
        ("after imports", f"{p['imports']['rss']:,.0f}", f"{p['imports']['peak']:,.0f}", ""),
        (
            f"after intake.read ({p['intake']['s']:.0f} s)",
            f"{p['intake']['rss']:,.0f}",
            f"{p['intake']['peak']:,.0f}",
            f"items frame {p['intake']['items']:,.0f} MiB",
        ),
        (
            f"after plan.make ({p['plan']['s']:.0f} s)",
            f"{p['plan']['rss']:,.0f}",
            f"{p['plan']['peak']:,.0f}",
            f"work frame {p['plan']['work']:,.0f} MiB, "
            f"pending frame {p['plan']['pending']:,.0f} MiB",
        ),
        (
            "after dropping the items and the pending pairs",
            f"{p['without_intake_frame']['rss']:,.0f}",
            f"{p['without_intake_frame']['peak']:,.0f}",
            "the plan holds the rest",
        ),
    ]
    print(c.table(("step", "RSS MiB", "peak so far MiB", "frames"), rows))
    cols = ", ".join(f"{k} {v:,.0f}" for k, v in p["intake"]["items_by_column"].items())
    print(f"\nitems frame by column (MiB): {cols}  ")
    cols = ", ".join(f"{k} {v:,.0f}" for k, v in p["plan"]["work_by_column"].items())
    print(f"work frame by column (MiB): {cols}\n")


if __name__ == "__main__":
    sys.exit(main())
