"""Receipts across `archive` (finding: after `archive`, earlier receipts checked as "ledger
broken: event 1 is missing", and `receipt` refused archived requests that `status` still
knew). `--archive PATH` names the archive files the chain runs through.
"""

from __future__ import annotations

import sqlite3

import pytest

from erasure import cli
from tests import e2e
from tests.hostile.conftest import Finished


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    got = capsys.readouterr()
    return code, got.out, got.err


def test_receipts_are_issued_and_checked_after_archive(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    job, pub = str(finished.job), str(finished.key) + ".pub"
    before = finished.folder / "T1.json"
    assert 0 == cli.main(["receipt", job, "--request-id", "T1", "--out", str(before)])
    archive = finished.folder / "archive-1.sqlite"
    assert 0 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(archive)])
    # a new run after the archive: the live ledger continues the chain
    e2e.emails_csv(finished.input, range(5, 8))
    assert 0 == e2e.run(finished.job)

    code, out, err = _out(capsys, "check-receipt", str(before), "--public-key", pub, "--job", job)
    assert code == 64 and "--archive" in err, (out, err)
    code, out, err = _out(
        capsys,
        "check-receipt",
        str(before),
        "--public-key",
        pub,
        "--job",
        job,
        "--archive",
        str(archive),
    )
    assert code == 0 and out.startswith("valid:"), (out, err)

    after = finished.folder / "T2.html"
    code, out, err = _out(capsys, "receipt", job, "--request-id", "T2", "--out", str(after))
    assert code == 64 and "--archive" in err
    assert not after.exists()
    code, out, err = _out(
        capsys, "receipt", job, "--request-id", "T2", "--out", str(after), "--archive", str(archive)
    )
    assert code == 0, err
    code, out, err = _out(
        capsys,
        "check-receipt",
        str(after),
        "--public-key",
        pub,
        "--job",
        job,
        "--archive",
        str(archive),
    )
    assert code == 0 and out.startswith("valid:"), (out, err)
    # a request of the new run needs no archive to be issued
    newer = finished.folder / "T6.json"
    assert 0 == cli.main(
        ["receipt", job, "--request-id", "T6", "--out", str(newer), "--archive", str(archive)]
    )


def test_an_archive_of_another_ledger_does_not_make_a_receipt_valid(
    finished: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    job, pub = str(finished.job), str(finished.key) + ".pub"
    receipt = finished.folder / "T1.json"
    assert 0 == cli.main(["receipt", job, "--request-id", "T1", "--out", str(receipt)])
    archive = finished.folder / "a.sqlite"
    assert 0 == cli.main(["archive", job, "--before", "2999-01-01", "--out", str(archive)])
    wrong = finished.folder / "empty.sqlite"

    sqlite3.connect(wrong).close()
    code, _, err = _out(
        capsys,
        "check-receipt",
        str(receipt),
        "--public-key",
        pub,
        "--job",
        job,
        "--archive",
        str(wrong),
    )
    assert code != 0 and "Traceback" not in err
