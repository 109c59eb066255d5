"""The ledger: append-only, chained, locked, and replayed as set arithmetic."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import given, settings

from erasure import ledger as L
from erasure.errors import LedgerBusy, LedgerMismatch, LedgerWriteError
from erasure.keys import Keyer
from erasure.ledger import store as ledger_store
from erasure.run import make_plan
from tests.ledger_details import FINISHED, STARTED

KEYER = Keyer(b"k" * 32)


def _ev(kind: L.Kind, run: int = 1, **kw: object) -> L.Event:
    return L.Event(kind, run, **kw)  # type: ignore[arg-type]


def _sample(path: Path) -> None:
    with L.Ledger(path, KEYER) as led:
        led.append([_ev(L.Kind.RUN_STARTED, detail=STARTED)])
        led.append(
            [
                _ev(L.Kind.PLANNED, key="a" * 32, request_id="T1", db_id=1, matching="email"),
                _ev(L.Kind.SENT, key="a" * 32, attempt=1),
                _ev(
                    L.Kind.OUTCOME,
                    key="a" * 32,
                    request_id="T1",
                    attempt=1,
                    outcome="erased",
                    in_doubt=0,
                    profile_id="p1",
                    error_code=0,
                ),
                _ev(L.Kind.PLANNED, key="b" * 32, request_id="T2", db_id=1, matching="email"),
                _ev(L.Kind.SENT, key="b" * 32, attempt=1),
            ]
        )


def test_fresh_ledger_verifies(tmp_path: Path) -> None:
    """A ledger written by the writer is intact and names its head."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    verdict = L.verify(path, KEYER)
    assert verdict.ok, verdict.problem
    assert 7 == verdict.events
    assert 64 == len(verdict.head_link)


def test_update_and_delete_are_refused_by_the_schema(tmp_path: Path) -> None:
    """Triggers make the events table append-only, even for sqlite3 users."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    with closing(sqlite3.connect(path)) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE events SET outcome = 'rejected' WHERE seq = 5")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM events WHERE seq = 5")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE meta SET value = 'x'")


def _tamper(path: Path, *sql: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("DROP TRIGGER events_no_delete")
        for s in sql:
            db.execute(s)
        db.commit()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (["UPDATE events SET outcome = 'not_found' WHERE seq = 5"], "event 5"),
        (["UPDATE events SET error_text = 'x' WHERE seq = 3"], "event 3"),
        (["DELETE FROM events WHERE seq = 4"], "event 4 is missing"),
        (
            [
                "UPDATE events SET seq = 100 WHERE seq = 4",
                "UPDATE events SET seq = 4 WHERE seq = 5",
                "UPDATE events SET seq = 5 WHERE seq = 100",
            ],
            "event 4",
        ),
        (
            [
                "INSERT INTO events (seq, at, run, kind, key, request_id, outcome, link) "
                "SELECT 8, at, 1, 'outcome', key, 'T2', 'erased', link FROM events WHERE seq = 7"
            ],
            "event 8",
        ),
    ],
    ids=["changed-outcome", "changed-text", "deleted", "swapped", "forged-append"],
)
def test_verify_names_the_first_broken_event(tmp_path: Path, sql: list[str], named: str) -> None:
    """Changing, removing, reordering or forging an event breaks the chain there."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    _tamper(path, *sql)
    verdict = L.verify(path, KEYER)
    assert not verdict.ok
    assert verdict.problem is not None and named in verdict.problem


def test_verify_refuses_another_key(tmp_path: Path) -> None:
    """A ledger checked with the wrong key is a mismatch, not 'broken'."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    with pytest.raises(LedgerMismatch, match="another ledger key"):
        L.verify(path, Keyer(b"z" * 32))


def test_open_with_other_key_refused(tmp_path: Path) -> None:
    """A run with a different key refuses to start instead of resending everything."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    with pytest.raises(LedgerMismatch, match="another ledger key"):
        L.Ledger(path, Keyer(b"z" * 32))


def test_other_derivation_version_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger written under other normalisation rules is refused (78)."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    monkeypatch.setattr(ledger_store, "NORMALISATION_VERSION", "n0")
    with pytest.raises(LedgerMismatch, match="normalisation rules"):
        L.Ledger(path, KEYER)


def test_second_writer_is_refused_at_once(tmp_path: Path) -> None:
    """Only one writer: the second gets LedgerBusy (75) and touches nothing."""
    path = tmp_path / "l.sqlite"
    with L.Ledger(path, KEYER), pytest.raises(LedgerBusy):
        L.Ledger(path, KEYER)
    with L.Ledger(path, KEYER):  # released on close
        pass


def test_disk_full_keeps_what_was_committed(tmp_path: Path) -> None:
    """A full ledger raises LedgerWriteError; every earlier commit survives and verifies."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    with L.Ledger(path, KEYER, max_pages=12) as led:
        big = [_ev(L.Kind.ATTEMPT, key="c" * 32, error_text="x" * 500) for _ in range(50)]
        with pytest.raises(LedgerWriteError, match="cannot be written"):
            for _ in range(100):
                led.append(big)
        committed = led.head_seq
    verdict = L.verify(path, KEYER)
    assert verdict.ok, verdict.problem
    assert committed == verdict.events
    with L.Ledger(path, KEYER) as led:  # a roomier disk: appending goes on
        led.append([_ev(L.Kind.RUN_FINISHED, detail=FINISHED)])
    assert L.verify(path, KEYER).ok


def test_doubt_is_a_sent_without_answer(tmp_path: Path) -> None:
    """A key with a sent intent and no answer after it is in doubt; withdrawn is not."""
    path = tmp_path / "l.sqlite"
    _sample(path)
    with closing(L.open_readonly(path)) as db:
        assert {"b" * 32} == L.doubtful_keys(db)
    with L.Ledger(path, KEYER) as led:
        led.append([_ev(L.Kind.WITHDRAWN, key="b" * 32, attempt=1)])
    with closing(L.open_readonly(path)) as db:
        assert set() == L.doubtful_keys(db)


def test_unanswered_attempt_then_failed_stays_in_doubt(tmp_path: Path) -> None:
    """A timed-out request keeps its key in doubt through a 'failed' outcome."""
    path = tmp_path / "l.sqlite"
    k = "d" * 32
    with L.Ledger(path, KEYER) as led:
        led.append(
            [
                _ev(L.Kind.SENT, key=k, attempt=1),
                _ev(L.Kind.ATTEMPT, key=k, attempt=1, in_doubt=1),
                _ev(L.Kind.SENT, key=k, attempt=2),
                _ev(
                    L.Kind.OUTCOME, key=k, request_id=None, attempt=2, outcome="failed", in_doubt=1
                ),
            ]
        )
    with closing(L.open_readonly(path)) as db:
        assert {k} == L.doubtful_keys(db)


# ---------------------------------------------------------------- replay property

_KEYS = [c * 32 for c in "abcdef"]
_REQS = [None, "T1", "T2"]
_event = st.tuples(
    st.sampled_from(["sent", "attempt", "outcome"]),
    st.sampled_from(_KEYS),
    st.sampled_from(_REQS),
    st.sampled_from(["erased", "not_found", "rejected", "failed"]),
)


def _items() -> pl.DataFrame:
    rows = [(r, k, i) for i, (r, k) in enumerate((r, k) for k in _KEYS for r in _REQS)]
    return pl.DataFrame(
        {
            "request_id": [r for r, _, _ in rows],
            "key": [k for _, k, _ in rows],
            "db_id": [1] * len(rows),
            "matching": ["email"] * len(rows),
            "resource_id": pl.Series([None] * len(rows), dtype=pl.Int64),
            "field_name": pl.Series([None] * len(rows), dtype=pl.String),
            "value": [f"v{i}@x.io" for _, _, i in rows],
            "value_is_int": [False] * len(rows),
            "received_at": pl.Series([None] * len(rows), dtype=pl.Datetime("us", "UTC")),
            "row": [i + 2 for _, _, i in rows],
        }
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, max_size=25))
def test_replay_of_any_prefix_never_reports_a_finished_pair_pending(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[str, str, str | None, str]]
) -> None:
    """Whatever prefix of history is on disk, a pair with a final outcome is not pending."""
    path = tmp_path_factory.mktemp("replay") / "l.sqlite"
    with L.Ledger(path, KEYER) as led:
        for kind, key, req, outcome in events:
            if kind == "outcome":
                led.append([_ev(L.Kind.OUTCOME, key=key, request_id=req, outcome=outcome)])
            else:
                led.append([_ev(L.Kind(kind), key=key, attempt=1)])
    with closing(L.open_readonly(path)) as db:
        plan = make_plan(_items(), L.finished_pairs(db), L.doubtful_keys(db))
    final_pairs = {(r, k) for kind, k, r, o in events if kind == "outcome" and o in L.FINAL}
    final_keys = {k for _, k in final_pairs}
    for row in plan.pending.iter_rows(named=True):
        pair = (row["request_id"], row["key"])
        assert pair not in final_pairs
        if row["request_id"] is None:
            assert row["key"] not in final_keys
    # and everything not final is still pending
    pending = {(r["request_id"], r["key"]) for r in plan.pending.iter_rows(named=True)}
    for r, k, _ in ((r, k, 0) for k in _KEYS for r in _REQS):
        finished = (r, k) in final_pairs or (r is None and k in final_keys)
        assert finished != ((r, k) in pending)


_CELL = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)))  # any text but lone surrogates
)


@given(seq=st.integers(min_value=0, max_value=2**62), at=st.text(), values=st.lists(_CELL))
def test_canonical_bytes_are_json_dumps_compact_utf8(
    seq: int, at: str, values: list[object]
) -> None:
    """The chain covers the bytes json.dumps would give: old ledgers verify, others can check."""
    expected = json.dumps([seq, at, *values], separators=(",", ":"), ensure_ascii=False).encode()
    assert L.canonical_v1(seq, at, values) == expected


def test_canonical_bytes_of_an_event_with_its_kind() -> None:
    event = L.Event(L.Kind.OUTCOME, 3, key="ab", outcome="erased", error_text='a "b"\n\x01é')
    expected = json.dumps([7, "t", *event], separators=(",", ":"), ensure_ascii=False).encode()
    assert L.canonical_v1(7, "t", event) == expected


def test_a_write_failure_is_known_by_its_result_code_not_its_words(tmp_path: Path) -> None:
    from erasure.ledger.store import is_write_failure

    path = tmp_path / "ro.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE t (x)")
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        with pytest.raises(sqlite3.OperationalError) as readonly:
            db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError) as syntax:
            db.execute("INSERT INTO nowhere VALUES (1)")
    assert is_write_failure(readonly.value)
    assert not is_write_failure(syntax.value)
    extended = sqlite3.OperationalError("anything at all")
    extended.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
    assert is_write_failure(extended)
    worded = sqlite3.OperationalError("database or disk is full")  # words alone decide nothing
    assert not is_write_failure(worded)
