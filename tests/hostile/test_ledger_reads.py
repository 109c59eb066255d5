"""Reading a ledger when the machine fails, and verify's head for a broken ledger (findings:
memory pressure read as "not an erasure ledger"; `verify` printed a wrong head for a broken
ledger: seq N-1 with event N's link).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from tests.hostile.conftest import Finished

ROOT = Path(__file__).resolve().parents[2]
_UNDER = {
    # SQLite's own heap limit, process-wide: opening the ledger runs out of memory
    "memory": "import sqlite3; "
    "sqlite3.connect(':memory:').execute('PRAGMA hard_heap_limit = 20000')",
    # a file-size limit: SQLite cannot grow its shared-memory file, an I/O error
    "io": "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))",
}


@pytest.mark.parametrize(("pressure", "words"), [("memory", "out of memory"), ("io", "I/O error")])
@pytest.mark.parametrize("command", ["status", "report"])
def test_a_machine_failing_the_read_is_74_never_not_a_ledger(
    finished: Finished, pressure: str, words: str, command: str
) -> None:
    args = [command, str(finished.job)]
    if command == "report":
        args += ["--out", str(finished.folder / "r.csv")]
    code = f"{_UNDER[pressure]}\nimport sys\nfrom erasure import cli\nsys.exit(cli.main({args!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 74, result.stderr
    assert words in result.stderr and "not an erasure ledger" not in result.stderr


def _links(ledger: Path) -> dict[int, str]:
    with closing(sqlite3.connect(ledger)) as db:
        return dict(db.execute("SELECT seq, link FROM events"))


@pytest.mark.parametrize("where", ["events", "plain_links"])
def test_verify_names_the_last_intact_event_as_the_head(
    finished: Finished, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = finished.ledger
    links = _links(ledger)
    broken = sorted(links)[len(links) // 2]
    with closing(sqlite3.connect(ledger)) as db:
        if where == "events":
            db.execute("DROP TRIGGER events_no_update")
            db.execute("UPDATE events SET error_text = 'changed' WHERE seq = ?", (broken,))
        else:
            db.execute("DROP TRIGGER plain_links_no_update")
            db.execute("UPDATE plain_links SET link = ? WHERE seq = ?", ("0" * 64, broken))
        db.commit()
    capsys.readouterr()
    assert 1 == cli.main(["verify", str(finished.job)])
    out = capsys.readouterr().out
    head = re.search(r"^head: (\d+):([0-9a-f]+)$", out, re.MULTILINE)
    assert head is not None, out
    assert int(head.group(1)) == broken - 1
    assert head.group(2) == links[broken - 1], "the head's link must be its own event's"
