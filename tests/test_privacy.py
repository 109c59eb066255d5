"""Privacy by construction: no raw identifier and no token leaves the process.

After a full run with faults (and a sandbox that echoes identifiers in its
error texts), none of the raw emails, phones or the token appears in the
logs, the ledger (its rows and its bytes), any report (XLSX and Parquet
read back, not their compressed bytes), any other file the tool wrote, or
the output of status and lookup.
The rejects file is the one place raw values are written, on purpose (a
person must fix them), and it is readable by its owner only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from erasure import cli
from erasure.receipts import keygen
from tests import e2e
from tests.sandbox_fixture import SandboxProcess

pytestmark = pytest.mark.slow

TOKEN = "sandbox-token"


def _erasure(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "erasure", *args],
        capture_output=True,
        check=False,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _readable(path: Path) -> str:
    """What a person or program reading ``path`` would see, decompressed.

    The raw bytes of an XLSX (a zip of XML parts) or a Parquet file
    (compressed pages) can never contain an identifier, so searching them
    proves nothing: XLSX parts are unzipped, Parquet values read back, and
    the ledger's rows read through SQLite as well as its bytes searched.
    """
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return "\n".join(book.read(name).decode("utf-8") for name in book.namelist())
    if suffix == ".parquet":
        frame = pl.read_parquet(path)
        cells = frame.select(pl.all().cast(pl.String)).rows()
        return "\n".join([*frame.columns, *(str(c) for row in cells for c in row)])
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.name.endswith(".sqlite"):
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in tables:
                for row in db.execute(f'SELECT * FROM "{name}"'):
                    text += "\n" + "\t".join(map(str, row))
    return text


def test_readable_sees_inside_xlsx_parquet_and_the_ledger(tmp_path: Path) -> None:
    """The search itself can find a value in each kind of file it is given."""
    value = "needle@example.com"
    frame = pl.DataFrame({"a": [value]})
    frame.write_parquet(tmp_path / "x.parquet")
    book = xlsxwriter.Workbook(str(tmp_path / "x.xlsx"))
    book.add_worksheet().write_string(0, 0, value)
    book.close()
    with closing(sqlite3.connect(tmp_path / "x.sqlite")) as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (value,))
        db.commit()
    for name in ("x.parquet", "x.xlsx", "x.sqlite"):
        assert value in _readable(tmp_path / name), name
    assert value.encode() not in (tmp_path / "x.xlsx").read_bytes()  # why _readable exists


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``erasure ARGS`` in this process (a read-only command); its code and its output."""
    capsys.readouterr()
    code = cli.main(list(args))
    said = capsys.readouterr()
    return code, said.out + said.err


def test_no_identifier_or_token_in_logs_ledger_reports_or_output(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 40
    lines = ["ticket,email,phone"]
    raw: list[str] = []
    for i in range(n):
        email, phone = f"user{i}@example.com", f"8 (900) {i:03d}-00-00"
        lines.append(f"T{i},{email},{phone}")
        raw += [email, f"+7900{i:03d}0000", f"900{i:03d}0000"]
    for i in range(5):  # people the service does not know: echoed back in error texts
        lines.append(f"X{i},ghost{i}@example.com,")
        raw.append(f"ghost{i}@example.com")
    lines.append("Y1,not-an-email-y1,")  # an invalid row: recorded, never quoted
    raw.append("not-an-email-y1")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    # the rejects file holds raw values on purpose: it goes outside the searched folder
    rejects = tmp_path.parent / f"{tmp_path.name}-rejects.csv"
    with SandboxProcess(
        "--generate",
        "50",
        # no 429s: they carry no body to echo, and each halves the run's pace for
        # 30 s of real time (the pacer's recovery, tested in test_ratelimit.py)
        "--fail-5xx",
        "0.2",
        "--drop-after-delete",
        "0.1",
        "--echo-identifier",
        "--seed",
        "11",
    ) as sb:
        # four eyes: a planner's and an approver's key (plans and approvals are searched too)
        secrets = tmp_path.parent / f"{tmp_path.name}-keys"
        secrets.mkdir(mode=0o700)
        planner, dpo = (keygen(secrets / f"{n}.key").private_path for n in ("planner", "dpo"))
        job = e2e.job(
            write_job,
            sb.url,
            api={"timeout_s": 2},
            run={"max_attempts": 10, "rate_per_s": 300},
            approval={"signing_key_file": str(planner), "approvers": [f"{dpo}.pub"]},
        )
        run = _erasure(
            "run", str(job), "--no-progress", "--log-format", "json", "--rejects", str(rejects)
        )
        assert run.returncode in (0, 1, 75), run.stderr[-2000:]
    assert rejects.exists()
    rejects.unlink()
    outputs = [run.stdout.decode(), run.stderr.decode()]
    # a person's decisions, a plan and its approval: keys and words only
    for args in (
        [
            "hold",
            str(job),
            "--email",
            "user3@example.com",
            "--reason",
            "asked by user3@example.com",
        ],
        ["hold", str(job), "--phone", "8 (900) 004-00-00", "--reason", "call +79000040000"],
        ["cancel", str(job), "--request-id", "T5", "--reason", "withdrawn"],
        ["holds", str(job), "--json"],
        ["holds", str(job)],
        ["plan", str(job), "--out", str(tmp_path / "plan.json")],
        ["plan", str(job), "--out", str(tmp_path / "plan.html")],
        [
            "approve",
            str(tmp_path / "plan.json"),
            "--key",
            str(dpo),
            "--out",
            str(tmp_path / "ok.json"),
        ],
    ):
        code, said = _in_process(capsys, *args)
        assert 0 == code, said
        outputs.append(said)
    # the read-only commands in this process: the run above is the real process
    for fmt in ("csv", "xlsx", "parquet", "html"):
        code, said = _in_process(capsys, "report", str(job), "--out", str(tmp_path / f"r.{fmt}"))
        assert 0 == code, said
        outputs.append(said)
    for args in (
        ["status", str(job)],
        ["status", str(job), "--json"],
        ["lookup", str(job), "--email", "user1@example.com"],
        ["verify", str(job)],
    ):
        outputs.append(_in_process(capsys, *args)[1])
    # every file the tool wrote: all but the input and the job file
    written = sorted(p for p in tmp_path.iterdir() if p.name not in ("in.csv", "job.toml"))
    names = {p.name for p in written}
    assert {
        "ledger.sqlite",
        "r.csv",
        "r.xlsx",
        "r.parquet",
        "r.html",
        "plan.html",
        "ok.json",
    } <= names
    outputs += [_readable(p) for p in written if p.is_file()]
    blob = "\n".join(outputs).casefold()
    assert "ghost0@example.com" not in blob  # the sandbox echoed it: the ledger keyed it
    for value in [*raw, TOKEN]:
        assert value.casefold() not in blob, f"{value!r} leaked"


def test_rejects_file_is_owner_only(write_job: Callable[..., Path], tmp_path: Path) -> None:
    """Raw values go only where --rejects asks, owner-only; nothing beside the ledger by default."""
    (tmp_path / "in.csv").write_text("email\nnot-an-email\n=cmd|' /C calc'!A0\n")
    job = str(write_job())
    old = os.umask(0o022)
    try:
        plain = _erasure("validate", job)
        rejects = tmp_path / "fix" / "rejects.csv"
        result = _erasure("validate", job, "--rejects", str(rejects))
    finally:
        os.umask(old)
    assert 1 == plain.returncode == result.returncode, result.stderr  # invalid rows: exit 1
    assert b"not-an-email" not in plain.stdout + plain.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fix", "in.csv", "job.toml"]
    assert 0o600 == stat.S_IMODE(rejects.stat().st_mode)
    text = rejects.read_text(encoding="utf-8-sig")
    assert "\n=cmd" not in text and ",=cmd" not in text  # neutralised
