"""Carried-over open pairs (issue 21): a run's start with 10,000 pairs left open by a stopped night.

    .venv/bin/python bench/carry.py [--rows 10000]

Builds a ledger of two earlier runs, written straight through the real
chain and triggers: night 1 finished every pair of ``done.csv`` (``--rows``
emails, not found), night 2 planned every pair of ``a.csv`` (``--rows``
other emails) and stopped (exit 75) before sending any. Tonight's input is
``done.csv`` again: its pairs are all final (skipped), and the run carries
``a.csv``'s open pairs over (the file is still where night 2 read it).

Measured, each on its own:

- in process: the open pairs by input file (the partial index), the carry
  (which earlier files, their state, ``a.csv`` read again), and the check
  of the skipped pairs (erasure.ledger.finality: each cited outcome event
  and its link);
- ``erasure run`` to its first request (the preflight) at a zero-latency
  sandbox, as a whole process: three times on fresh copies, the median.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import common as c
from history import first_request


def build(folder: Path, rows: int) -> Path:
    """The ledger of the two earlier nights; ``done.csv`` and ``a.csv`` written beside it."""
    from erasure.keys import Keyer, message_prefix
    from erasure.ledger import Event, Kind, Ledger
    from erasure.ledger.store import insert

    keyer = Keyer(c.LEDGER_KEY.encode())
    prefix = message_prefix(1, "email", None, None)
    done = c.write_emails(folder / "done.csv", rows)
    left = c.write_emails(folder / "a.csv", rows, start=rows)
    path = folder / "ledger.sqlite"
    with Ledger(path, keyer) as ledger:
        db = ledger.connection
        seq, link, plain = ledger.head_seq, ledger.head_link, ledger.plain_head
        for run, file, finish in ((1, done, True), (2, left, False)):
            start = 0 if run == 1 else rows
            values = [f"nobody{i}@example.org" for i in range(start, start + rows)]
            keys = keyer.keys(prefix, values)
            given = {
                "path": str(file.absolute()),
                "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                "rows": rows,
            }
            started = {"settings": {}, "input": given, "plan": {"pairs": rows}}
            batch = [Event(Kind.RUN_STARTED, run, detail=json.dumps(started))]
            for key in keys:
                batch.append(Event(Kind.PLANNED, run, key=key, db_id=1, matching="email"))
                if finish:
                    batch.append(Event(Kind.SENT, run, key=key, attempt=1))
                    batch.append(
                        Event(
                            Kind.OUTCOME,
                            run,
                            key=key,
                            attempt=1,
                            outcome="not_found",  # type: ignore[arg-type]
                            in_doubt=0,
                            error_code=404,
                            http_status=200,
                        )
                    )
            end = {"exit_code": 0 if finish else 75, "unrecorded": 0}
            batch.append(Event(Kind.RUN_FINISHED, run, detail=json.dumps(end)))
            db.execute("BEGIN")
            seq, link, plain = insert(db, keyer, batch, seq, link, plain)
            db.execute("COMMIT")
    return path


def steps(folder: Path, job: Path) -> dict[str, float]:
    """The run's start, piece by piece, in this process (seconds)."""
    import os

    from erasure import carry, intake
    from erasure import job as job_mod
    from erasure.keys import Role
    from erasure.ledger import finality, inputs, open_readonly
    from erasure.ledger import read as ledger_read

    os.environ["ERASURE_LEDGER_KEY"] = c.LEDGER_KEY
    loaded = job_mod.load(job)
    keyer = loaded.keyer(Role.CHAIN)
    data = intake.read(loaded, keyer, folder / "done.csv")
    out: dict[str, float] = {}
    db = open_readonly(loaded.ledger.path)
    try:
        t0 = time.perf_counter()
        open_ = inputs.open_pairs(db)
        inputs.input_files(db, open_)
        out["open pairs by input file (index)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        carried = carry.carry_over(db, loaded, keyer, data)
        out[f"carry: a.csv read again ({carried.items.height:,} pairs)"] = time.perf_counter() - t0
        finished, _ = ledger_read.tonight(db, data.items.get_column("key"))
        keys = finished.get_column("key").unique().to_list()
        t0 = time.perf_counter()
        checked = finality.check_keys(db, keys, keyer, final_only=True)  # as run checks
        out[f"check of skipped pairs ({len(keys):,} keys, {checked:,} citations)"] = (
            time.perf_counter() - t0
        )
    finally:
        db.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="erasure-carry-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        ledger = build(folder, args.rows)
        built = time.perf_counter() - t0
        with c.Sandbox() as sb:
            job = c.write_job(folder, sb.url, input_path="done.csv")
            pieces = steps(folder, job)
            firsts = []
            for i in range(3):
                copy = folder / f"run{i}.sqlite"
                shutil.copy(ledger, copy)
                run_job = c.write_job(
                    folder, sb.url, name=f"run{i}.toml", input_path="done.csv", ledger=copy.name
                )
                firsts.append(first_request(sb, run_job).wall_s)
    c.heading(
        "Carried-over open pairs",
        f"{args.rows:,} pairs of a.csv left open by a stopped night, carried into a run of "
        f"done.csv ({args.rows:,} pairs, all final: skipped); ledger built in {built:.1f} s. "
        "`.venv/bin/python bench/carry.py`",
    )
    rows = [(name, f"{s:.3f}") for name, s in pieces.items()]
    rows.append(
        (
            "run: first request (median of 3, whole process)",
            f"{statistics.median(firsts):.3f} ({', '.join(f'{x:.2f}' for x in firsts)})",
        )
    )
    print(c.table(("step", "seconds"), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
