"""The full verify's two parts (issue 14 speed): the streamed chain check and the replay."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import orjson
import pytest

from erasure import ledger as L
from erasure.ledger.verify import Part
from tests.test_ledger_state import KEYER, _history, _write

AWKWARD = ["a\x01b", "\n\t\r\b\f", "é€😀", "\x7f", "\u2028", '"\\/', "", "x" * 300]


@pytest.mark.parametrize("text", AWKWARD, ids=range(len(AWKWARD)))
def test_sqlite_json_array_is_the_canonical_bytes(text: str) -> None:
    """The chain check reads SQLite's json_array bytes: they must be orjson's (the writer's)."""
    with closing(sqlite3.connect(":memory:")) as db:
        (made,) = db.execute(
            "SELECT CAST(json_array(7, ?, NULL, -5, 2147483648) AS BLOB)", (text,)
        ).fetchone()
    assert made == orjson.dumps([7, text, None, -5, 2147483648])


def test_a_full_verify_times_each_part_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    _write(path, _history(random.Random(21)))
    check = L.verify(path, KEYER)
    assert check.ok, check.problem
    assert [t.part for t in check.timings] == [Part.CHAIN, Part.DERIVED]
    assert all(t.events == check.events for t in check.timings)
    lines = [n for n in check.notes if n.startswith(("chain:", "derived state:"))]
    assert lines == [t.line() for t in check.timings]
    assert f"chain: {check.events:,} events checked in " in lines[0]


def test_a_changed_event_is_named_after_the_writers_bytes_agree(tmp_path: Path) -> None:
    """When the SQL bytes miss a link the writer's bytes are tried; a real change stays broken."""
    path = tmp_path / "l.sqlite"
    _write(path, _history(random.Random(4)))
    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET error_text = 'changed' WHERE seq = 6")
        db.commit()
    broken = L.verify(path, KEYER)
    assert not broken.ok and "event 6 (" in (broken.problem or "")
    assert broken.head_seq == 5


def test_the_lookup_path_imports_no_network_code(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """lookup, status and verify, run on a real ledger: no httpx, anyio or aiohttp loaded.

    (lookup does load the intake: it normalises the value it is asked about
    by the intake's own rules.)
    """
    _write(tmp_path / "ledger.sqlite", _history(random.Random(8)))
    job = str(write_job())
    code = (
        "import json, sys\n"
        "from erasure import cli\n"
        f"codes = [cli.main(['lookup', {job!r}, '--email', 'nobody@example.com']),\n"
        f"         cli.main(['status', {job!r}]), cli.main(['verify', {job!r}])]\n"
        "heavy = {'httpx', 'anyio', 'aiohttp', 'erasure.run', 'structlog'}\n"
        "print(json.dumps([codes, sorted(heavy & set(sys.modules))]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ERASURE_LEDGER_KEY": "k" * 32},
    )
    said = done.stdout.splitlines()
    assert "ledger intact:" in done.stdout and "not in the ledger" in done.stdout, done.stderr
    # lookup: 1 (nobody by that key), status 0, verify 0; and no network module
    assert [[1, 0, 0], []] == json.loads(said[-1])
