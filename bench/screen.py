"""Screen benchmark: a 1,000,000-row import file through ``erasure screen``.

    .venv/bin/python bench/screen.py [--rows 1000000] [--erased 10000]

Builds, in a temporary folder, a ledger in which ``--erased`` identifiers
were erased (planned and outcome events, as a run writes them), and one CSV
per case (emails; E.164 phones) whose rows name every tenth erased person
among new ones, then times :func:`erasure.after.use_cases.screen` on each (reading,
normalising, keying, matching and writing the clean copy). Prints a
Markdown table. Target on a 2-core machine: under 5 s per case.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from erasure import job as job_mod
from erasure import ledger as L
from erasure.after import use_cases
from erasure.keys import Keyer, message_prefix

TARGET_S = 5.0
KEY = "bench-ledger-key-0123456789abcdef"


def _identifier(case: str, i: int) -> str:
    return f"user{i}@example.com" if case == "emails" else f"+7900{i:07d}"


def _ledger(path: Path, keyer: Keyer, erased: int) -> None:
    with L.Ledger(path, keyer) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail="{}")])
        for matching, case in (("email", "emails"), ("phone", "phones")):
            prefix = message_prefix(1, matching, None, None)
            keys = keyer.keys(prefix, [_identifier(case, i) for i in range(erased)])
            batch: list[L.Event] = []
            for n, key in enumerate(keys):
                rid = f"T{matching}{n}"
                batch.append(L.Event(L.Kind.PLANNED, 1, key=key, request_id=rid, db_id=1,
                                     matching=matching))  # type: ignore[arg-type]  # fmt: skip
                batch.append(L.Event(L.Kind.OUTCOME, 1, key=key, request_id=rid,
                                     outcome=L.Outcome.ERASED, in_doubt=0))  # fmt: skip
            led.append(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--erased", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["ERASURE_LEDGER_KEY"] = KEY
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        job_path = folder / "job.toml"
        job_path.write_text(
            '[api]\nbase_url = "http://127.0.0.1:9"\n[input]\ndb_id = 1\n'
            '[ledger]\npath = "ledger.sqlite"\n'
        )
        job = job_mod.load(job_path)
        _ledger(job.ledger.path, Keyer(KEY.encode()), args.erased)
        print("| case | rows | kept | screened | seconds | target |\n|---|---|---|---|---|---|")
        for case, column in (("emails", "email"), ("phones-e164", "phone")):
            source = folder / f"{case}.csv"
            with source.open("w") as f:
                f.write(f"{column},note\n")
                for i in range(args.rows):
                    # every 100th row names an erased person (every tenth of them)
                    n = (i // 100) * 10 % args.erased if i % 100 == 0 else args.erased + i
                    f.write(f"{_identifier(case, n)},row {i}\n")
            out = folder / f"{case}.clean.csv"
            start = time.perf_counter()
            result = use_cases.screen(job, source, out)
            took = time.perf_counter() - start
            verdict = "ok" if took < TARGET_S else "MISSED"
            print(
                f"| {case} | {result.rows:,} | {result.kept:,} | {result.screened:,} | "
                f"{took:.2f} | {verdict} < {TARGET_S:g} s |"
            )


if __name__ == "__main__":
    main()
