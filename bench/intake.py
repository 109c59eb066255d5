"""Intake benchmark: 1,000,000-row request files through ``erasure.intake.read``.

    .venv/bin/python bench/intake.py [--rows 1000000] [--case emails ...]

Generates, in a temporary folder, one CSV per case (10 % of the rows repeat
an earlier identifier, 2 % are invalid), then reads each in a fresh
subprocess and reports the wall time of ``intake.read`` (file to keyed
items), the whole process's time (interpreter start and imports included)
the CPU time it used (its worker processes' included), and the peak
resident memory of the process (and of its phone workers). Prints a
Markdown table, with the machine's load average and how long the keyed
hash alone takes for 1M values: on a shared machine, compare with that.

Targets on a 2-core machine: emails <= 2.5 s and <= 1 GiB; E.164 phones
<= 3 s; phones in mixed local formats <= 20 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGETS = {"emails": 2.5, "phones-e164": 3.0, "phones-mixed": 20.0}  # seconds
# Not run unless asked: numbers abroad dialled from Russia ("8 10" then the country
# code), which the vectorised paths leave to phonenumbers, on every core.
EXTRA = {"phones-slow-path": 20.0}

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from erasure import intake, job
from erasure.keys import Keyer
j = job.load(sys.argv[1])
keyer = Keyer(b"bench-ledger-key-0123456789abcdef")
def cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
t1, c1 = time.perf_counter(), cpu()
result = intake.read(j, keyer)
t2, c2 = time.perf_counter(), cpu()
kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"read_s": t2 - t1, "cpu_s": c2 - c1, "imports_s": t1 - t0,
                  "rss_mib": kib / 1024, "children_rss_mib": children / 1024, **{
                  k: getattr(result.counts, k) for k in result.counts.__slots__}}))
"""


def _email(rng: random.Random, i: int) -> str:
    return f"user{i}.{rng.randrange(10**6)}@example{rng.randrange(50)}.com"


def _bad_email(rng: random.Random, i: int) -> str:
    return rng.choice([f"user{i}.example.com", f"user{i}@@example.com", f"user {i}@mail.ru"])


def _e164(rng: random.Random, i: int) -> str:
    return f"+79{rng.randrange(10**9):09d}"


def _bad_phone(rng: random.Random, i: int) -> str:
    return rng.choice([f"+7916{i % 1000:03d}", f"+70{rng.randrange(10**9):09d}", "12"])


def _local(rng: random.Random, i: int) -> str:
    d = f"9{rng.randrange(10**9):09d}"
    a, b, c, e = d[:3], d[3:6], d[6:8], d[8:]
    return rng.choice(
        [
            f"8 ({a}) {b}-{c}-{e}",
            f"+7 {a} {b}-{c}-{e}",
            f"8{d}",
            f"{d}",
            f"+7{d}",
            f"7-{a}-{b}-{c}-{e}",
            f"8-{a}-{b}{c}{e}",
        ]
    )


def generate(
    path: Path, header: str, rows: int, good: Callable[..., str], bad: Callable[..., str]
) -> None:
    """``rows`` rows: 88 % distinct valid values, 10 % repeats, 2 % invalid."""
    rng = random.Random(20240501)
    seen: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        for i in range(rows):
            roll = rng.random()
            if roll < 0.02:
                value = bad(rng, i)
            elif roll < 0.12 and seen:
                value = seen[rng.randrange(len(seen))]
            else:
                value = good(rng, i)
                seen.append(value)
            f.write(value + "\n")


def _abroad(rng: random.Random, i: int) -> str:
    return f"8 10 49 30 {rng.randrange(10**8):08d}"  # Berlin


CASES: dict[str, tuple[str, Callable[..., str], Callable[..., str]]] = {
    "emails": ("email", _email, _bad_email),
    "phones-e164": ("phone", _e164, _bad_phone),
    "phones-mixed": ("phone", _local, _bad_phone),
    "phones-slow-path": ("phone", _abroad, _bad_phone),
}


def run_case(folder: Path, name: str, rows: int) -> dict[str, float]:
    header, good, bad = CASES[name]
    data = folder / f"{name}.csv"
    generate(data, header, rows, good, bad)
    job = folder / f"{name}.toml"
    job.write_text(
        f'[api]\nbase_url = "http://127.0.0.1:9"\n[input]\npath = "{data.name}"\ndb_id = 1\n',
        encoding="utf-8",
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(job)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    result["process_s"] = time.perf_counter() - started
    result["size_mib"] = data.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    args = parser.parse_args()
    cases = args.case or list(TARGETS)
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        results = {name: run_case(Path(tmp), name, args.rows) for name in cases}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print(
        f"on CPython {platform.python_version()}, {os.cpu_count()} CPUs, load average {load};"
        f" Keyer.keys over 1M values alone: {_keyer_seconds():.2f} s"
    )
    print()
    # bench/run_all.py reads this table: keep case, rows, read s and peak RSS at 0, 1, 3, 5
    print(
        "| case | rows | file MiB | intake.read s | whole process s | peak RSS MiB | CPU s"
        " | workers' peak RSS MiB | keys | duplicates | invalid | target s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {args.rows:,} | {r['size_mib']:.1f} | {r['read_s']:.2f} |"
            f" {r['process_s']:.2f} | {r['rss_mib']:.0f} | {r['cpu_s']:.2f} |"
            f" {r['children_rss_mib']:.0f} | {int(r['keys']):,} | {int(r['duplicates']):,} |"
            f" {int(r['invalid']):,} | {TARGETS.get(name) or EXTRA[name]} |"
        )


def _keyer_seconds() -> float:
    """The floor under every case: one HMAC per distinct identifier (a machine-speed gauge)."""
    from erasure.keys import Keyer

    values = [f"user{i}@example.com" for i in range(1_000_000)]
    keyer = Keyer(b"bench-ledger-key-0123456789abcdef")
    started = time.perf_counter()
    keyer.keys("prefix", values)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
