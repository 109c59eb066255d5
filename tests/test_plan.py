"""The plan: pending = planned − finished, as the contract's finality rules say.

Through ``make_plan`` alone (pure: frames in, a plan out). A pair with a
request id is finished only by its own request's final outcome; a pair
without one by its key's final outcome for any request.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import intake
from erasure.run import Plan, make_plan

NOTHING = pl.DataFrame(schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String})

Item = tuple[int, str | None, str]  # spreadsheet row, request id, key


def _items(rows: list[Item]) -> pl.DataFrame:
    """The intake's items for ``rows``: email matching in database 1."""
    return pl.DataFrame(
        {
            "request_id": [r for _, r, _ in rows],
            "key": [k for _, _, k in rows],
            "db_id": [1] * len(rows),
            "matching": ["email"] * len(rows),
            "resource_id": [None] * len(rows),
            "field_name": [None] * len(rows),
            "value": [f"{k}@example.com" for _, _, k in rows],
            "value_is_int": [False] * len(rows),
            "received_at": [datetime(2026, 1, row, tzinfo=UTC) for row, _, _ in rows],
            "row": [row for row, _, _ in rows],
        },
        schema=intake.ITEMS_SCHEMA,
    )


def _finished(rows: list[tuple[str | None, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=NOTHING.schema, orient="row")


def _pending(p: Plan) -> list[tuple[str | None, str]]:
    return [(r["request_id"], r["key"]) for r in p.pending.iter_rows(named=True)]


def test_a_fresh_plan_sends_every_key_once_with_all_its_requests() -> None:
    p = make_plan(_items([(2, "T1", "a"), (3, "T2", "b"), (4, "T3", "a")]), NOTHING, set())
    assert [("T1", "a"), ("T2", "b"), ("T3", "a")] == _pending(p)
    assert (3, 2, 0, 0, 0) == (p.pairs, p.to_send, p.already_done, p.already_rejected, p.in_doubt)
    work = p.work.select("key", "request_ids", "value", "in_doubt").rows()
    assert [("a", ["T1", "T3"], "a@example.com", False), ("b", ["T2"], "b@example.com", False)] == (
        work
    )
    received = p.work.get_column("received_ats").to_list()
    assert [[datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)]] == received[:1]


def test_a_request_is_finished_only_by_its_own_outcome() -> None:
    """A person who asks again (a new request id) is a new erasure and is sent."""
    items = _items([(2, "T1", "a"), (3, "T9", "a")])
    p = make_plan(items, _finished([("T1", "a", "erased")]), set())
    assert [("T9", "a")] == _pending(p)
    assert (1, 1, 0) == (p.already_done, p.to_send, p.already_rejected)


def test_a_pair_without_a_request_id_is_finished_by_any_final_outcome_of_its_key() -> None:
    items = _items([(2, None, "a"), (3, None, "b")])
    p = make_plan(items, _finished([("T7", "a", "not_found")]), set())
    assert [(None, "b")] == _pending(p)
    assert ["b"] == p.work.get_column("key").to_list()


def test_rejected_is_final_and_counted_as_such() -> None:
    items = _items([(2, "T1", "a"), (3, "T2", "b"), (4, "T3", "c")])
    finished = _finished([("T1", "a", "rejected"), ("T2", "b", "erased")])
    p = make_plan(items, finished, set())
    assert [("T3", "c")] == _pending(p)
    assert (2, 1) == (p.already_done, p.already_rejected)


def test_doubtful_keys_are_sent_again_flagged_in_doubt() -> None:
    items = _items([(2, "T1", "a"), (3, "T2", "b"), (4, "T3", "c")])
    p = make_plan(items, _finished([("T3", "c", "erased")]), {"b", "c", "zz"})
    assert [("a", False), ("b", True)] == p.work.select("key", "in_doubt").rows()
    assert 1 == p.in_doubt  # c is finished; zz is not in this input


def test_pending_is_in_first_seen_order_asked_rows_first() -> None:
    """Items out of row order come back by row; within a row, those with a request id first."""
    items = _items([(5, "T5", "e"), (2, None, "b"), (2, "T2", "a"), (3, "T3", "c")])
    p = make_plan(items, NOTHING, set())
    assert [("T2", "a"), (None, "b"), ("T3", "c"), ("T5", "e")] == _pending(p)
    assert ["a", "b", "c", "e"] == p.work.get_column("key").to_list()


def test_without_pending_keeps_the_work_and_the_counts() -> None:
    items = _items([(2, "T1", "a"), (3, "T2", "b")])
    p = make_plan(items, _finished([("T1", "a", "erased")]), {"b"})
    lean = p.without_pending()
    assert 0 == lean.pending.height and lean.pending.schema == p.pending.schema
    assert lean.work.equals(p.work)
    assert (1, 1, 1, 1) == (lean.pairs, lean.to_send, lean.already_done, lean.in_doubt)


KEYS = st.sampled_from(["a", "b", "c", "d"])
REQUESTS = st.sampled_from([None, "T1", "T2"])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(2, 30), REQUESTS, KEYS), max_size=12),
    done=st.lists(
        st.tuples(REQUESTS, KEYS, st.sampled_from(["erased", "not_found", "rejected"])),
        max_size=6,
    ),
)
def test_pending_is_planned_minus_finished(
    rows: list[Item], done: list[tuple[str | None, str, str]]
) -> None:
    """Set arithmetic: each planned pair is pending exactly when no rule finishes it."""
    p = make_plan(_items(rows), _finished(done), set())
    finished_pairs = {(r, k) for r, k, _ in done}
    finished_keys = {k for _, k, _ in done}

    def is_finished(request_id: str | None, key: str) -> bool:
        if request_id is None:
            return key in finished_keys
        return (request_id, key) in finished_pairs

    expected = [(r, k) for _, r, k in rows if not is_finished(r, k)]
    assert sorted(expected, key=repr) == sorted(_pending(p), key=repr)
    assert len(rows) - len(expected) == p.already_done
    work_keys = p.work.get_column("key").to_list()
    assert len(work_keys) == len(set(work_keys))  # each key is sent once
    assert set(work_keys) == {k for _, k in expected}
