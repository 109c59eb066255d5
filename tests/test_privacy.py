"""Privacy by construction: no raw identifier and no token leaves the process.

After a full run with faults (and a sandbox that echoes identifiers in its
error texts), none of the raw emails, phones or the token appears in the
logs, the ledger's bytes, any report, or the output of status and lookup.
The rejects file is the one place raw values are written, on purpose (a
person must fix them), and it is readable by its owner only.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_no_identifier_or_token_in_logs_ledger_reports_or_output(
    write_job: Callable[..., Path], tmp_path: Path
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
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    with SandboxProcess(
        "--generate",
        "50",
        "--fail-5xx",
        "0.2",
        "--fail-429",
        "0.1",
        "--retry-after",
        "0",
        "--drop-after-delete",
        "0.1",
        "--echo-identifier",
        "--seed",
        "11",
    ) as sb:
        job = e2e.job(
            write_job, sb.url, api={"timeout_s": 2}, run={"max_attempts": 10, "rate_per_s": 300}
        )
        run = _erasure("run", str(job), "--no-progress", "--log-format", "json")
        assert run.returncode in (0, 1, 75), run.stderr[-2000:]
    outputs = [run.stdout, run.stderr]
    for fmt in ("csv", "xlsx", "parquet", "html"):
        out = tmp_path / f"report.{fmt}"
        rep = _erasure("report", str(job), "--out", str(out))
        assert 0 == rep.returncode, rep.stderr
        outputs.append(out.read_bytes())
    for args in (
        ["status", str(job)],
        ["status", str(job), "--json"],
        ["lookup", str(job), "--email", "user1@example.com"],
        ["verify", str(job)],
    ):
        outputs.append(_erasure(*args).stdout)
    for f in tmp_path.glob("ledger.sqlite*"):
        outputs.append(f.read_bytes())
    blob = b"\n".join(outputs)
    for value in [*raw, TOKEN]:
        assert value.encode() not in blob, f"{value!r} leaked"


def test_rejects_file_is_owner_only(write_job: Callable[..., Path], tmp_path: Path) -> None:
    """The rejects file holds raw values, so nobody but its owner may read it."""
    (tmp_path / "in.csv").write_text("email\nnot-an-email\n=cmd|' /C calc'!A0\n")
    old = os.umask(0o022)
    try:
        result = _erasure("validate", str(write_job()))
    finally:
        os.umask(old)
    assert 0 == result.returncode, result.stderr
    rejects = tmp_path / "ledger-rejects.csv"
    assert 0o600 == stat.S_IMODE(rejects.stat().st_mode)
    text = rejects.read_text()
    assert "\n=cmd" not in text and ",=cmd" not in text  # neutralised
