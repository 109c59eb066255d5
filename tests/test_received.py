"""A request's received_at is the earliest usable one among its rows (issue 21).

Rows with no usable identifier count too: a ticket whose every cell is
unusable still has a deadline (and is open and past it); a ticket whose
received dates are all unusable has an unknown deadline: reported, exit 1,
but an erased request stays complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from erasure import cli, intake
from erasure import job as job_mod
from erasure.keys import Role
from tests import e2e
from tests.sandbox_fixture import Sandbox

ROWS = [
    "ticket,email,received",
    "T1,user1@example.com,2024-05-10",
    "T1,olga.mail.ru,2024-05-01",  # no usable identifier, but the earliest usable date
    "N1,nobody.mail.ru,2024-05-01",  # every cell unusable: no identifier, a deadline still
    "D1,user2@example.com,32.13.2024",  # erased, its only date unusable: deadline unknown
    "D2,bad.mail.ru,32.13.2024",  # neither: no identifier, deadline unknown
]


@pytest.fixture(name="job")
def _job(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> Path:
    sandbox = sandbox_factory(generate_count=5)
    (tmp_path / "in.csv").write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    return e2e.job(write_job, sandbox.url, input={"received_at_column": "received"})


def _status(job: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert 0 == cli.main(["status", str(job), "--json"])
    info: dict[str, Any] = json.loads(capsys.readouterr().out)
    return info


def test_the_earliest_usable_date_of_any_row_and_conflicts_logged(job: Path) -> None:
    loaded = job_mod.load(job)
    with capture_logs() as logs:
        data = intake.read(loaded, loaded.keyer(Role.IDENTIFIER))
    items = {r["request_id"]: r["received_at"] for r in data.items.iter_rows(named=True)}
    assert items["T1"].date().isoformat() == "2024-05-01"  # from the row with no identifier
    assert items["D1"] is None
    conflicts = [e for e in logs if e["event"] == "erasure.intake.received_at_conflict"]
    assert [(e["request_id"], e["dates"]) for e in conflicts] == [("T1", 2)]
    bad = data.invalid.filter(data.invalid["reason"] == "received_at_invalid")
    assert sorted(bad["request_id"].to_list()) == ["D1", "D2"]  # D2 has no identifier, too
    n1 = data.invalid.filter(data.invalid["request_id"] == "N1")
    assert n1["received_at"].to_list()[0].date().isoformat() == "2024-05-01"


def test_status_reports_unknown_deadlines_and_open_requests_past_theirs(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 1 == e2e.run(job)  # invalid rows, and deadlines unknown: a person must look
    info = _status(job, capsys)
    assert info["deadline_unknown"] == 2  # D1, D2
    assert info["incomplete_reasons"]["no_identifier"] == 2  # N1, D2
    # T1's unusable email is an invalid record; D1's unusable date is none of the reasons
    assert info["incomplete_reasons"]["invalid"] == 1
    acc = info["accounting"]
    assert (acc["requests"], acc["complete"]) == (4, 1)  # D1: erased, its deadline unknown
    # N1 (received 2024-05-01, nothing erasable) is open and past its deadline
    assert acc["open_past_deadline"] == 1
    out = tmp_path / "r.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(out)])
    import polars as pl

    rows = pl.read_csv(out, infer_schema=False)
    n1 = rows.filter(pl.col("request_id") == "N1")
    assert n1["deadline"].is_not_null().all()
    d1 = rows.filter(pl.col("request_id") == "D1")
    assert set(d1["request_status"]) == {"complete"}


def test_a_replay_of_the_events_counts_the_same(job: Path, tmp_path: Path) -> None:
    """The state a migration replays from every event counts as the one the run kept."""
    from contextlib import closing

    from erasure import ledger as L
    from erasure import status
    from erasure.keys import Role
    from tests.test_ledger_state import _migrated_copy

    assert 1 == e2e.run(job)
    loaded = job_mod.load(job)
    kept = loaded.ledger.path
    replayed = _migrated_copy(kept, tmp_path, loaded.keyer(Role.CHAIN))
    with closing(L.open_readonly(kept)) as a, closing(L.open_readonly(replayed)) as b:
        one, two = status.status(a).as_json(), status.status(b).as_json()
    for name in ("accounting", "deadline_unknown", "incomplete_reasons", "overdue"):
        assert one[name] == two[name], name


def test_a_receipt_of_a_request_with_no_usable_identifier_says_when_it_came(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import closing

    from erasure import ledger as L
    from erasure.after.events import ledger_events
    from erasure.after.receipt import claims_of

    assert 1 == e2e.run(job)
    with closing(L.open_readonly(job_mod.load(job).ledger.path)) as db:
        events = claims_of(list(ledger_events(db)), "N1")
    assert events.request.received_at is not None
    assert events.request.received_at.startswith("2024-05-01")
    assert events.request.deadline is not None
