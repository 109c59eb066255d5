"""The kept summaries' deadline counts (SQL, a day of receipt at a time) agree with the rows.

erasure.deadline_table counts overdue pairs and late or open-past requests in
SQL over the derived state; status.pairs and request_states judge each row in
polars. A ledger of requests received at every hour around the deadlines, at
local midnights, open or finished, some extended in time and some too late,
is read both ways for rules in days, months and working days, in three zones.
"""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from erasure import deadline_table, status
from erasure import ledger as L
from tests.ledger_details import extended
from tests.test_report import KEYER, _ev, _outcome, _planned

NOW = datetime.now(UTC)
RULES = [
    {"deadline": "10 days", "timezone": "Europe/Moscow"},
    {"deadline": "1 month", "timezone": "America/New_York", "extension_max": "2 months"},
    {"deadline": "3 working days", "timezone": "Europe/Moscow", "extension_max": "5 days"},
    {"deadline": "12 days", "timezone": "UTC", "extension_max": "3 days"},  # extended: SQL path
]


def _received(i: int, zone: str) -> datetime:
    if i % 5 == 0:  # a local midnight: the first instant of its day
        day = (NOW - timedelta(days=i // 2)).astimezone(ZoneInfo(zone)).date()
        return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return NOW - timedelta(hours=11 * i + 7)


def _build(path: Path, settings: dict[str, str]) -> None:
    zone = settings["timezone"]
    events: list[L.Event] = [_ev(L.Kind.RUN_STARTED, 1, detail=json.dumps({"settings": settings}))]
    for i in range(80):
        rid, key = f"T{i}", f"{i:032x}"
        events.append(_planned(1, rid, key, _received(i, zone).isoformat()))
        if i % 3 == 0:
            events.append(_outcome(1, rid, key, "erased"))
        elif i % 3 == 1 and i % 2:
            events.append(_outcome(1, rid, key, "failed"))
        if i % 7 == 0:  # some extended (in time or too late: the ledger says when)
            to = (NOW + timedelta(days=3)).date().isoformat()
            events.append(_ev(L.Kind.EXTENDED, 0, request_id=rid, detail=extended(to)))
    with L.Ledger(path, KEYER) as led:
        led.append(events)


@pytest.mark.parametrize("settings", RULES, ids=lambda s: f"{s['deadline']}@{s['timezone']}")
def test_the_sql_counts_agree_with_the_rows(tmp_path: Path, settings: dict[str, str]) -> None:
    path = tmp_path / "l.sqlite"
    _build(path, settings)
    with closing(L.open_readonly(path)) as db:
        rows, _, account = status.account(db, now=NOW)
        rule, ext = deadline_table.rule_of(db), deadline_table.extensions_of(db)
        assert ext, "the ledger has extensions"
        overdue = deadline_table.overdue_count(db, rule, ext, now=NOW)
        flags = deadline_table.deadline_flags(db, rule, ext, now=NOW)
    assert overdue == int(rows["overdue"].fill_null(False).sum())
    assert flags == (account.open_past_deadline, account.finished_late)
    assert 0 < overdue < 80  # the ledger straddles its deadlines
