"""Helpers for end-to-end tests: input files, job files, and reading the ledger."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from erasure import app, cli, logs
from erasure import job as job_mod
from erasure.errors import ErasureError
from erasure.ledger import open_readonly
from erasure.run import Options
from erasure.status import pairs


def emails_csv(
    path: Path, ids: range | list[int], *, tickets: bool = True, extra: list[str] = ()
) -> Path:  # type: ignore[assignment]
    """A request file naming generated sandbox profiles user{i}@example.com."""
    lines = ["ticket,email" if tickets else "email"]
    for i in ids:
        lines.append(f"T{i},user{i}@example.com" if tickets else f"user{i}@example.com")
    lines += list(extra)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job(write_job: Any, url: str, **sections: dict[str, object]) -> Path:
    """A job for the sandbox at ``url``: emails from in.csv, ticket ids, fast retries."""
    base: dict[str, dict[str, object]] = {
        "api": {"base_url": url, "timeout_s": 2},
        "input": {"path": "in.csv", "db_id": 1, "request_id_column": "ticket"},
        "run": {"concurrency": 8, "rate_per_s": 500, "max_attempts": 8},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return write_job(**base)  # type: ignore[no-any-return]


def run(job_path: Path, *args: str) -> int:
    """``erasure run JOB ARGS`` in this process; returns the exit code."""
    return cli.main(["run", str(job_path), "--no-progress", "--log-format", "json", *args])


def run_with(job_path: Path, options: Options) -> int:
    """``erasure run JOB`` through the use case, with runner options the command line
    does not offer (a retry policy, a smaller bound); returns the exit code."""
    logs.configure("json")
    try:
        result = app.run(job_mod.load(job_path), app.RunOptions(runner=options))
    except ErasureError as exc:
        return int(exc.exit_code)
    return int(result.exit_code)


def ledger_pairs(ledger: Path) -> list[dict[str, Any]]:
    with closing(open_readonly(ledger)) as db:
        return pairs(db).to_dicts()


def events(ledger: Path, sql: str = "SELECT * FROM events ORDER BY seq") -> list[sqlite3.Row]:
    with closing(sqlite3.connect(ledger)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql).fetchall()


def outcome_counts(ledger: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in ledger_pairs(ledger):
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return counts
