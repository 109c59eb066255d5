"""A state machine over the ledger: append run-shaped events in any order hypothesis finds.

After every sequence: ``verify`` passes (both chains, the structure, and the
derived state rebuilt from the events equals the kept one), and the derived
state the triggers kept, step by step, equals the one a replay of every
event from scratch builds (the migration of a ledger stripped of it).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from erasure import ledger as L
from erasure.ledger import state
from tests.ledger_details import finished, started
from tests.test_ledger_state import KEYER, KEYS, RIDS, _strip_state

RECEIVED = [None, "2029-12-01T10:00:00+00:00", "2020-01-01T23:30:00+00:00"]
OUTCOMES = ["erased", "not_found", "rejected", "failed"]


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every derived table's rows, in a fixed order."""
    with closing(sqlite3.connect(path)) as db:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in state.TABLES
        }


class LedgerMachine(RuleBasedStateMachine):
    """Runs start, plan pairs, send, answer, withdraw, find invalid rows, finish (or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-machine-"))
        self.path = self.folder / "ledger.sqlite"
        self.ledger = L.Ledger(self.path, KEYER)
        self.run = 0  # the run being written; 0: none yet
        self.planned: set[tuple[str | None, str]] = set()  # this run's pairs
        self.sent: set[str] = set()  # keys this run sent a request for
        self.events = self.ledger.head_seq  # a new ledger may open with events of its own

    def _append(self, *events: L.Event) -> None:
        self.ledger.append(list(events))
        self.events += len(events)

    @rule(finish=st.booleans())
    def start_run(self, finish: bool) -> None:
        """A new run; the one before finished, or was killed (no run_finished)."""
        if self.run and finish:
            self._append(L.Event(L.Kind.RUN_FINISHED, self.run, detail=finished(0, self.run)))
        self.run += 1
        self.planned, self.sent = set(), set()
        self._append(L.Event(L.Kind.RUN_STARTED, self.run, detail=started({"deadline_days": 3})))

    @precondition(lambda self: self.run > 0)
    @rule(key=st.sampled_from(KEYS), rid=st.sampled_from(RIDS), received=st.sampled_from(RECEIVED))
    def plan(self, key: str, rid: str | None, received: str | None) -> None:
        if key in self.sent:
            return  # a run plans all of a key's pairs before its first request
        self.planned.add((rid, key))
        self._append(
            L.Event(
                L.Kind.PLANNED,
                self.run,
                key=key,
                request_id=rid,
                db_id=1,
                matching="email",
                received_at=received,
            )
        )

    @precondition(lambda self: bool(self.planned))
    @rule(data=st.data(), answer=st.sampled_from(["none", "attempt", "withdrawn"]))
    def send(self, data: st.DataObject, answer: str) -> None:
        key = data.draw(st.sampled_from(sorted({k for _, k in self.planned})))
        self.sent.add(key)
        events = [L.Event(L.Kind.SENT, self.run, key=key, attempt=1)]
        if answer == "attempt":
            doubt = data.draw(st.sampled_from([0, 1]))
            events.append(L.Event(L.Kind.ATTEMPT, self.run, key=key, in_doubt=doubt))
        elif answer == "withdrawn":
            events.append(L.Event(L.Kind.WITHDRAWN, self.run, key=key))
        self._append(*events)

    @precondition(lambda self: bool(self.planned))
    @rule(data=st.data(), outcome=st.sampled_from(OUTCOMES), doubt=st.sampled_from([0, 1]))
    def answer(self, data: st.DataObject, outcome: str, doubt: int) -> None:
        rid, key = data.draw(st.sampled_from(sorted(self.planned, key=repr)))
        self._append(
            L.Event(
                L.Kind.OUTCOME,
                self.run,
                key=key,
                request_id=rid,
                outcome=outcome,  # type: ignore[arg-type]
                in_doubt=doubt,
            )
        )

    @precondition(lambda self: self.run > 0)
    @rule(rid=st.sampled_from(RIDS), row=st.integers(2, 9), column=st.sampled_from([None, "E"]))
    def invalid(self, rid: str | None, row: int, column: str | None) -> None:
        detail = {
            "input": "ab",
            "row": row,
            "column": column,
            "reason": "email_invalid",
            "words": "w",
        }
        self._append(L.Event(L.Kind.INVALID, self.run, request_id=rid, detail=json.dumps(detail)))

    @precondition(lambda self: self.events > 0 and self.run > 0)
    @rule(data=st.data(), rid=st.sampled_from(RIDS))
    def resolve(self, data: st.DataObject, rid: str | None) -> None:
        """A later file resolves earlier events (whatever their kind)."""
        seqs = data.draw(st.lists(st.integers(1, self.events), min_size=1, max_size=3))
        detail = json.dumps(
            {"column": "Email", "input": "cd", "row": 2, "resolves": sorted(set(seqs))}
        )
        self._append(L.Event(L.Kind.RESOLVED, self.run, request_id=rid, detail=detail))

    @invariant()
    def the_chain_counts_every_event(self) -> None:
        assert self.ledger.head_seq == self.events

    def teardown(self) -> None:
        self.ledger.close()
        try:
            if self.run:
                check = L.verify(self.path, KEYER)
                assert check.ok, check.problem
                replayed = self.folder / "replayed.sqlite"
                shutil.copy(self.path, replayed)
                _strip_state(replayed)
                with L.Ledger(replayed, KEYER):  # migrates: every event replayed from scratch
                    pass
                assert _tables(replayed) == _tables(self.path)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


LedgerMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_machine = LedgerMachine.TestCase
