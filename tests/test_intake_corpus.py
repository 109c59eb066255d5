"""Bad input gets a clear answer: every file of tests/corpus against expected.toml.

Each case is a real file on disk; the answer is either counts and rejected
rows, or one line naming the problem with the contract's exit code. The
50 MB cases are written into tmp_path at test time, not committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure import intake, job, partition, status, validation
from erasure.errors import ErasureError
from erasure.keys import Keyer
from erasure.run import make_plan
from tests.conftest import LEDGER_KEY, _toml

CORPUS = Path(__file__).parent / "corpus"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))["case"]
HUGE = 50 * 2**20  # bytes
_NO_FINISHED = pl.DataFrame(
    schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}
)


def _case_id(case: dict[str, Any]) -> str:
    extra = "+".join(sorted(case.get("input", {})))
    return case["file"] + (f"[{extra}]" if extra else "")


def _make(case: dict[str, Any], tmp_path: Path) -> Path:
    """The case's input file: from the corpus, or made here."""
    made = case.get("make")
    path = tmp_path / case["file"]
    if made is None:
        return CORPUS / case["file"]
    if made == "directory":
        path.mkdir()
    elif made == "50mb-line":
        with path.open("wb") as f:
            f.write(b"email\nivan@mail.ru\n")
            f.write(b"x" * HUGE)
            f.write(b"\npetr@mail.ru\n")
    elif made == "50mb-header":
        path.write_bytes(b"a" * HUGE)
    return path


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus(case: dict[str, Any], tmp_path: Path, write_job: Callable[..., Path]) -> None:
    path = _make(case, tmp_path)
    settings: dict[str, object] = {"path": str(path), **case.get("input", {})}
    if "db_id_column" not in settings:
        settings["db_id"] = 1
    the_job = job.load(write_job(input=settings))
    keyer = Keyer(LEDGER_KEY.encode())
    if case["exit"]:
        with pytest.raises(ErasureError) as caught:
            intake.read(the_job, keyer)
        assert int(caught.value.exit_code) == case["exit"]
        message = str(caught.value)
        assert case["message"] in message
        assert "\n" not in message and len(message) < 400
        assert "ivan@mail.ru" not in message  # never an identifier
        return
    result = intake.read(the_job, keyer)
    counts = {k: getattr(result.counts, k) for k in intake.Counts.__slots__}
    assert counts == case["counts"]
    invalid = [list(r) for r in result.invalid.select("row", "reason").iter_rows()]
    assert invalid == case.get("invalid", [])
    longest = result.invalid.get_column("value").str.len_chars().max()
    assert longest is None or int(str(longest)) <= intake.REJECT_VALUE_MAX + 30
    assert result.items.schema == intake.ITEMS_SCHEMA
    assert result.invalid.schema == intake.INVALID_SCHEMA
    # every stage's parts sum to its whole (no ledger: nothing already final)
    plan = make_plan(result.items, _NO_FINISHED, set())
    account = validation.account_of(result, plan)
    assert all(i.holds for i in account.identities())
    assert account.to_send == counts["pairs"] and account.invalid == len(invalid)
    _partition_holds(result)
    # the words never quote a cell
    for words, value in result.invalid.select("words", "value").iter_rows():
        assert value is None or len(value.strip()) < 3 or value.strip() not in words


def _partition_holds(result: intake.Intake) -> None:
    """The partition's identity for the file as a first run would leave it (nothing sent).

    Every request is counted once: no usable identifier (its every cell unusable) before
    anything else; an unusable received date is never the partition's ``invalid``.
    """
    pairs = result.items.select(
        "request_id", pl.lit("pending").alias("outcome"), pl.lit(None, pl.String).alias("reason")
    )
    bad = result.invalid.select("request_id", pl.lit("invalid").alias("outcome"), "reason")
    rows = pl.concat([pairs, bad]).with_columns(
        pl.lit(False).alias("in_doubt"),
        pl.lit(None, pl.String).alias("deadline"),
        pl.lit(None, pl.String).alias("finished_at"),
    )
    states = status.request_states(rows)
    why = dict(states.group_by("why").len().iter_rows())
    assert sum(why.values()) == states.height  # one state each
    assert set(why) <= {partition.COMPLETE, *partition.REASONS}
    named = set(pairs.get_column("request_id").drop_nulls())
    for rid, state in states.select("request_id", "why").iter_rows():
        if rid is not None and rid not in named:
            assert state == "no_identifier", (rid, state)
        elif rid is not None:
            assert state in ("open", "invalid"), (rid, state)


def _job_file(folder: Path, settings: dict[str, object]) -> Path:
    path = folder / "job.toml"
    sections: dict[str, dict[str, object]] = {
        "api": {"base_url": "http://127.0.0.1:9"},
        "input": settings,
        "ledger": {"path": "ledger.sqlite"},
    }
    path.write_text(_toml(sections), encoding="utf-8")
    return path


@pytest.fixture(name="write_job")
def _write_job_plain(tmp_path: Path) -> Callable[..., Path]:
    """conftest's write_job always sets db_id; some cases need db_id_column instead."""

    def write(input: dict[str, object]) -> Path:
        return _job_file(tmp_path, input)

    return write


CLI_CASES = ["empty.csv", "binary-with-nul.csv", "header-is-data.csv", "not-json.ndjson"]


@pytest.mark.parametrize("name", [*CLI_CASES, "missing.csv"])
def test_cli_says_one_line(name: str, tmp_path: Path, write_job: Callable[..., Path]) -> None:
    """`erasure validate` on bad input: one line on stderr, the exit code, no traceback."""
    path = CORPUS / name if name in CLI_CASES else tmp_path / name
    job_file = write_job(input={"path": str(path), "db_id": 1})
    done = subprocess.run(
        [sys.executable, "-m", "erasure", "validate", str(job_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "ERASURE_LEDGER_KEY": LEDGER_KEY},
        timeout=60,
        check=False,
    )
    expected = 66 if name == "missing.csv" else 65
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "ivan@mail.ru" not in done.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suffix=st.sampled_from([".csv", ".tsv", ".ndjson", ".parquet", ".xlsx"]),
    data=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='email,phone;\t|"\n\r@.+0123456789аяé\u200b{}[]:', max_size=200).map(
            str.encode
        ),
    ),
)
def test_any_bytes_give_an_answer_never_a_traceback(suffix: str, data: bytes) -> None:
    """Whatever the file holds: a result, or an ErasureError with one line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        the_job = job.load(_job_file(Path(tmp), {"path": str(path), "db_id": 1}))
        try:
            result = intake.read(the_job, Keyer(LEDGER_KEY.encode()))
        except ErasureError as exc:
            assert int(exc.exit_code) in (65, 66)
            assert "\n" not in str(exc)
        else:
            counts = result.counts
            assert counts.valid == counts.pairs + counts.duplicates
            assert counts.identifiers >= counts.valid
