"""Run every benchmark and write bench/RESULTS.md (``make bench``).

    .venv/bin/python bench/run_all.py [--only NAME ...] [--skip NAME ...] [--note TEXT]

Runs each script of :data:`SCRIPTS` in turn as a subprocess, collects the
Markdown it prints, and writes one file: a header naming the machine, a
main table of the figures that have targets (from the scripts' ``--json-out``
records, and from the intake benchmark's table), then each script's own
section with the command behind every figure. ``--only`` reruns some
scripts and keeps the other sections (and their figures) from the existing
file, so that a part disturbed by other work on the machine can be measured
again. Every script is bounded in time (:data:`TIMEOUT_S`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "RESULTS.md"
TIMEOUT_S = 900  # seconds per script at most

# name: (script, arguments, takes --json-out, what it measures)
SCRIPTS: dict[str, tuple[str, list[str], bool, str]] = {
    "intake": ("intake.py", [], False, "intake of 1,000,000 rows"),
    "sandbox_wrk": ("sandbox_wrk.py", ["--duration", "5"], False, "the sandbox's ceiling (wrk)"),
    "transport": (
        "transport.py",
        ["--requests", "5000", "--warmup", "1000"],
        False,
        "HTTP transports at concurrency 64",
    ),
    "dispatch": ("dispatch.py", [], True, "dispatch rate; latency-bound efficiency"),
    "curl": ("curl.py", [], True, "erasure against xargs -P 64 curl"),
    "ratefidelity": ("ratefidelity.py", [], True, "rate-ceiling fidelity"),
    "autorate": ("autorate.py", [], True, "auto rate against a hidden limit of 150/s"),
    "autorate_run": (
        "autorate.py",
        ["--sandbox"],
        True,
        "auto rate through erasure run against the sandbox's limit of 150/s",
    ),
    "resume": ("resume.py", [], True, "resume start-up with a 1M-event ledger"),
    "memory": ("memory.py", [], True, "peak RSS planning 10M identifiers"),
    "history": ("history.py", [], False, "the ledger over the years: 300k and 3M events"),
    "carry": ("carry.py", [], False, "a run's start with 10,000 carried-over open pairs"),
    "screen": ("screen.py", [], False, "erasure screen of 1,000,000 CSV rows"),
    "xlsx_guard": ("xlsx_guard.py", [], False, "bounding an XLSX of 500,000 rows before reading"),
}
INTAKE_TARGETS = {"emails": (2.5, 1024.0), "phones-e164": (3.0, None), "phones-mixed": (20.0, None)}
_SECTION = re.compile(
    r"<!-- section (?P<name>\S+) (?P<meta>\{.*?\}) -->\n(?P<body>.*?)<!-- end (?P=name) -->",
    re.S,
)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return (
        f"{os.cpu_count()} CPUs (`nproc`: {len(os.sched_getaffinity(0))}), {model}, "
        f"{int(mem) / 2**20:.0f} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_script(name: str, json_out: Path) -> dict[str, Any]:
    script, extra, takes_json, _ = SCRIPTS[name]
    command = [sys.executable, str(HERE / script), *extra]
    if takes_json:
        command += ["--json-out", str(json_out)]
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    load0, t0 = loadavg(), time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=HERE.parent
        )
        body, code, err = done.stdout, done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        body = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, err = -1, f"timed out after {TIMEOUT_S} s"
    seconds = time.perf_counter() - t0
    if code != 0:
        tail = "\n".join(err.strip().splitlines()[-20:])
        body += f"\n**{script} failed (exit {code})**:\n\n```\n{tail}\n```\n"
    records = []
    if takes_json and json_out.exists():
        records = [json.loads(line) for line in json_out.read_text().splitlines() if line]
    if name == "intake":
        records = intake_records(body)
    print(f"bench: {name} took {seconds:.0f} s (exit {code})", file=sys.stderr, flush=True)
    meta = {
        "seconds": round(seconds),
        "exit": code,
        "load_before": load0,
        "load_after": loadavg(),
        "records": records,
    }
    return {"name": name, "meta": meta, "body": body.strip() + "\n"}


def intake_records(body: str) -> list[dict[str, Any]]:
    """The intake benchmark's rows as figures with targets (its docstring's), by header name."""
    records: list[dict[str, Any]] = []
    columns: list[str] = []
    for line in body.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if cells and cells[0] == "case":
            columns = cells
            continue
        if not columns or len(cells) != len(columns) or cells[0] not in INTAKE_TARGETS:
            continue
        row = dict(zip(columns, cells, strict=True))
        try:
            seconds = float(row["intake.read s"])
            rss = float(row["peak RSS MiB"].replace(",", ""))
        except (KeyError, ValueError):
            continue
        limit_s, limit_mib = INTAKE_TARGETS[cells[0]]
        ok = seconds <= limit_s and (limit_mib is None or rss <= limit_mib)
        target = f"<= {limit_s:g} s" + (f", <= {limit_mib / 1024:g} GiB" if limit_mib else "")
        records.append(
            {
                "figure": f"intake of {row.get('rows', '?')} rows, {cells[0]} (intake.read)",
                "value": f"{seconds:.2f} s, peak RSS {rss:,.0f} MiB",
                "target": target,
                "met": ok,
                "script": "intake",
            }
        )
    return records


def read_existing() -> tuple[dict[str, dict[str, Any]], list[str]]:
    if not OUT.exists():
        return {}, []
    text = OUT.read_text(encoding="utf-8")
    sections = {}
    for m in _SECTION.finditer(text):
        body = m["body"]
        while body.startswith(("## ", "`python bench/", "\n")):  # headings of older files
            body = body.split("\n", 1)[1] if "\n" in body else ""
        sections[m["name"]] = {"name": m["name"], "meta": json.loads(m["meta"]), "body": body}
    notes = re.findall(r"^- note: (.*)$", text, re.M)
    return sections, notes


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def write(sections: dict[str, dict[str, Any]], notes: list[str], started: str) -> None:
    ordered = [sections[n] for n in SCRIPTS if n in sections]
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`.venv/bin/python bench/run_all.py`); do not edit by hand.",
        "",
        f"- machine: {machine()}",
        f"- written: {started} (a part rerun alone with `--only` keeps the others as they were)",
        "- **The ratios are the figures to trust.** This is a shared 2-core virtual machine: "
        "absolute rates move with whatever else runs on it (the load average before and after "
        "each part is given below); ratios between clients measured side by side, in the same "
        "run and against the same server, hold far better.",
        "- isolation: every server (the sandbox, pinned with `taskset` to core 1) and every "
        "client (erasure, aiohttp, curl, wrk: core 0) have a core each; erasure's ledger "
        "thread shares the client's core.",
    ]
    lines += [f"- note: {n}" for n in notes]
    lines += ["", "## Figures with targets", ""]
    lines += ["| figure | measured | target | met? | part |", "|---|---|---|---|---|"]
    for s in ordered:
        for r in s["meta"]["records"]:
            lines.append(
                f"| {r['figure']} | {r['value']} | {r['target']} | {met(r['met'])} "
                f"| [{s['name']}](#{s['name']}) |"
            )
    lines += ["", "## Parts", ""]
    lines += ["| part | what | seconds | load before / after | exit |", "|---|---|---|---|---|"]
    for s in ordered:
        m = s["meta"]
        lines.append(
            f"| [{s['name']}](#{s['name']}) | {SCRIPTS[s['name']][3]} | {m['seconds']} "
            f"| {m['load_before']:.2f} / {m['load_after']:.2f} | {m['exit']} |"
        )
    for s in ordered:
        script, extra = SCRIPTS[s["name"]][:2]
        lines += [
            "",
            f'## <a id="{s["name"]}"></a>{s["name"]}',
            "",
            f"`python bench/{' '.join([script, *extra])}`",
            "",
            f"<!-- section {s['name']} {json.dumps(s['meta'])} -->",
            s["body"].rstrip("\n"),
            f"<!-- end {s['name']} -->",
        ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


UNAVAILABLE = 69


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), help="run only these")
    parser.add_argument("--skip", nargs="+", choices=list(SCRIPTS), default=[])
    parser.add_argument("--note", action="append", default=[], help="a line for the header")
    args = parser.parse_args()
    names = [n for n in (args.only or SCRIPTS) if n not in args.skip]
    sections, notes = read_existing() if args.only else ({}, [])
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        for name in names:
            sections[name] = run_script(name, Path(tmp) / f"{name}.jsonl")
            write(sections, notes + args.note, started)
    print(f"bench: wrote {OUT} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # 69 (EX_UNAVAILABLE): a part that needs a tool this machine lacks (wrk);
    # its section says so, and it fails nothing else
    missing = [n for n in names if sections[n]["meta"]["exit"] == UNAVAILABLE]
    if missing:
        print(f"bench: not run here (a tool is missing): {', '.join(missing)}", file=sys.stderr)
    failed = [n for n in names if sections[n]["meta"]["exit"] not in (0, UNAVAILABLE)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
