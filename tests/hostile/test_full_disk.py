"""A full disk while writing an XLSX report or an archive is 74 with one line (finding: 70,
"internal error", the XLSX case with a traceback).

The disk fills at the write boundary: the command runs in a subprocess whose file-size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past it fail as a full disk does,
without root and without a special file system. The limit leaves room for SQLite's shared
memory file (32 KiB), so the ledger opens; the outputs do not fit.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 40_000  # bytes a file may grow to
_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from erasure import cli
raise SystemExit(cli.main(sys.argv[1:]))
"""


def _limited(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LIMITED.format(limit=LIMIT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


@pytest.fixture
def big(
    write_job: Callable[..., Path], sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> Path:
    """A finished run of 1,500 requests: its reports and archive outgrow LIMIT."""
    sandbox = sandbox_factory(generate_count=1500)
    e2e.emails_csv(tmp_path / "in.csv", range(1500))
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    return job


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv", ".html", ".parquet"])
def test_a_full_disk_writing_a_report_is_74_in_one_line(big: Path, suffix: str) -> None:
    out = big.parent / f"report{suffix}"
    result = _limited("report", str(big), "--out", str(out))
    assert result.returncode == 74, result.stderr
    assert "report" in _one_line(result.stderr)
    assert not out.exists()
    assert not [p for p in big.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_writing_an_archive_is_74_and_the_ledger_stays_whole(
    big: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = big.parent / "ledger.sqlite"
    with closing(sqlite3.connect(ledger)) as db:
        (before,) = db.execute("SELECT count(*) FROM events").fetchone()
    out = big.parent / "archive.sqlite"
    result = _limited("archive", str(big), "--before", "2999-01-01", "--out", str(out))
    assert result.returncode == 74, result.stderr
    _one_line(result.stderr)
    assert not out.exists()
    scratch = [p.name for p in big.parent.iterdir() if p.name.startswith(".")]
    assert scratch == [], scratch
    with closing(sqlite3.connect(ledger)) as db:
        (after,) = db.execute("SELECT count(*) FROM events").fetchone()
    assert after == before
    capsys.readouterr()
    assert 0 == cli.main(["verify", str(big)])
