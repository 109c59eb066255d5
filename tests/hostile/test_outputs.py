"""Outputs never overwrite what the tool reads or keeps (finding: `report --out requests.csv`,
`--rejects requests.csv` and the HTML report's overflow file overwrote the input).

The contract: `--out`, `--rejects`, the HTML report's overflow file (`OUT.rows.csv`),
receipts, archives and screened files are never the input, the job file, the ledger or
its companions: 64, nothing written. A report into a folder that does not exist: 64.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure.errors import UsageError
from erasure.ledger import open_readonly
from erasure.report import write as write_report
from tests.hostile.conftest import Finished


def _digests(folder: Path) -> dict[str, str]:
    """Every file's SHA-256 but SQLite's own -wal and -shm (a reader may touch them)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.mark.parametrize("target", ["input", "job", "ledger", "ledger-wal", "lock", "key"])
@pytest.mark.parametrize("suffix", [".csv", ".html"])
def test_report_never_overwrites_the_jobs_own_files(
    finished: Finished, target: str, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = {
        "input": finished.input,
        "job": finished.job,
        "ledger": finished.ledger,
        "ledger-wal": Path(str(finished.ledger) + "-wal"),
        "lock": Path(str(finished.ledger) + ".lock"),
        "key": finished.key,
    }[target]
    if path.suffix != suffix:  # the same file, reached through a link with the report's suffix
        link = finished.folder / f"report{suffix}"
        link.symlink_to(path)
        path = link
    before = _digests(finished.folder)
    capsys.readouterr()
    assert 64 == cli.main(["report", str(finished.job), "--out", str(path)])
    err = capsys.readouterr().err
    assert err.startswith("erasure: error: --out ") and err.count("\n") == 1
    assert _digests(finished.folder) == before


def test_rejects_never_overwrite_the_input(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digests(finished.folder)
    for command in ("validate", "run"):
        code = cli.main(
            [command, str(finished.job), "--rejects", str(finished.input), "--no-progress"][
                : 4 if command == "validate" else 5
            ]
        )
        assert code == 64, command
        assert "--rejects" in capsys.readouterr().err
    other = finished.folder / "other.csv"
    other.write_bytes(finished.input.read_bytes())
    before = _digests(finished.folder)
    code = cli.main(["validate", str(finished.job), "--input", str(other), "--rejects", str(other)])
    assert code == 64
    assert _digests(finished.folder) == before


def test_the_html_overflow_file_is_out_rows_csv_and_never_the_input(
    finished: Finished,
) -> None:
    from erasure.report import spill_path

    job = job_mod.load(finished.job)
    out = finished.folder / "in.html"  # its overflow used to be in.csv: the input
    assert spill_path(out) == finished.folder / "in.rows.csv"
    before = finished.input.read_bytes()
    with closing(open_readonly(finished.ledger)) as db:
        write_report(db, job, out, html_rows_max=2)
    assert finished.input.read_bytes() == before
    assert (finished.folder / "in.rows.csv").read_text().count("\n") == 6  # header + 5
    # and an overflow file that would be the job's own file is refused before anything
    hostile = finished.folder / "x.html"
    (finished.folder / "x.rows.csv").symlink_to(finished.input)
    with closing(open_readonly(finished.ledger)) as db, pytest.raises(UsageError):
        write_report(db, job, hostile, html_rows_max=2)
    assert not hostile.exists()
    assert finished.input.read_bytes() == before


def test_receipt_archive_and_screen_never_overwrite_the_jobs_files(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digests(finished.folder)
    job = str(finished.job)
    assert 64 == cli.main(["receipt", job, "--request-id", "T1", "--out", str(finished.job)])
    assert 64 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(finished.ledger)])
    wal = Path(str(finished.ledger) + "-wal")
    assert 64 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(wal)])
    other = finished.folder / "import.csv"
    other.write_text("email\nuser1@example.com\n")
    before = _digests(finished.folder)
    assert 64 == cli.main(["screen", job, "--input", str(other), "--out", str(finished.input)])
    assert _digests(finished.folder) == before
    with closing(sqlite3.connect(finished.ledger)) as db:
        (kinds,) = db.execute("SELECT count(*) FROM events WHERE kind = 'archived'").fetchone()
    assert kinds == 0


def test_a_report_into_a_missing_folder_is_a_bad_command_line(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    out = finished.folder / "no-such-folder" / "report.xlsx"
    assert 64 == cli.main(["report", str(finished.job), "--out", str(out)])
    assert "does not exist" in capsys.readouterr().err
