"""Memory shapes: what lets ten million identifiers fit in 1.5 GiB, pinned at test size.

``bench/memory.py`` measures the RSS. What that figure rests on is pinned
here: the intake's and the plan's shortcuts (a filter for ``unique``, keys
computed a chunk at a time, no grouping when no key repeats) give exactly
what the plain forms they replace give, and the columns a file does not
vary stay literals that take no memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import intake, job
from erasure.keys import Keyer
from erasure.run import plan
from tests.conftest import LEDGER_KEY, _toml

KEYER = Keyer(LEDGER_KEY.encode())


def _job(tmp_path: Path, **inp: object) -> job.Job:
    path = tmp_path / "job.toml"
    settings_ = {"path": "in.csv", "db_id": 1, **inp}
    path.write_text(
        _toml({"api": {"base_url": "http://127.0.0.1:9"}, "input": settings_}), encoding="utf-8"
    )
    return job.load(path)


def _size(frame: pl.DataFrame, column: str) -> float:
    """A column's estimated size in MiB, without turning a literal column into a full one."""
    return frame.lazy().select(column).collect().estimated_size("mb")


# ---------------------------------------------------------------- the plan


def _grouped(items: pl.DataFrame, finished: pl.DataFrame, doubtful: set[str]) -> plan.Plan:
    """The plan as it was made before the shortcuts: join, concat, sort, group."""
    finished = finished.unique(subset=["request_id", "key"], keep="last", maintain_order=True)
    by_pair = finished.filter(pl.col("request_id").is_not_null())
    done_keys = finished.unique(subset=["key"], keep="last").select("key", "outcome")
    with_req = items.filter(pl.col("request_id").is_not_null()).join(
        by_pair, on=["request_id", "key"], how="left", maintain_order="left"
    )
    without_req = items.filter(pl.col("request_id").is_null()).join(
        done_keys, on="key", how="left", maintain_order="left"
    )
    judged = pl.concat([with_req, without_req]).sort("row", maintain_order=True)
    done = judged.filter(pl.col("outcome").is_not_null())
    pending = judged.filter(pl.col("outcome").is_null()).drop("outcome")
    work = pending.group_by("key", maintain_order=True).agg(
        *(pl.col(c).first() for c in plan.WORK_COLUMNS if c != "key"),
        pl.col("request_id").alias("request_ids"),
        pl.col("received_at").alias("received_ats"),
    )
    doubt = pl.Series(sorted(doubtful), dtype=pl.String).implode()
    work = work.with_columns(pl.col("key").is_in(doubt).alias("in_doubt"))
    return plan.Plan(
        pending=pending,
        work=work,
        already_done=done.height,
        already_rejected=done.filter(pl.col("outcome") == "rejected").height,
        pairs=pending.height,
    )


KEYS = st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6"])
REQUESTS = st.sampled_from([None, None, "T-1", "T-2"])
ITEM = st.tuples(st.integers(2, 9), REQUESTS, KEYS, st.booleans())
FINISHED = st.tuples(REQUESTS, KEYS, st.sampled_from(["erased", "not_found", "rejected"]))


def _items(rows: list[tuple[int, str | None, str, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "request_id": [r for _, r, _, _ in rows],
            "key": [k for _, _, k, _ in rows],
            "db_id": [1] * len(rows),
            "matching": ["email"] * len(rows),
            "resource_id": [None] * len(rows),
            "field_name": [None] * len(rows),
            "value": [f"{k}@x.io" for _, _, k, _ in rows],
            "value_is_int": [False] * len(rows),
            "received_at": [
                datetime(2024, 5, row, tzinfo=UTC) if dated else None for row, _, _, dated in rows
            ],
            "row": [row for row, _, _, _ in rows],
        },
        schema=intake.ITEMS_SCHEMA,
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(ITEM, max_size=14),
    st.lists(FINISHED, max_size=6),
    st.sets(KEYS, max_size=3),
    st.sampled_from(["as drawn", "by row", "by row, asked first"]),
)
def test_plan_equals_the_grouping_it_shortcuts(
    rows: list[tuple[int, str | None, str, bool]],
    done: list[tuple[str | None, str, str]],
    doubtful: set[str],
    order: str,
) -> None:
    """Any items (in first-seen order or not, keys repeated or not), any ledger: the same plan."""
    if order == "by row":
        rows = sorted(rows, key=lambda r: r[0])
    elif order == "by row, asked first":  # the intake's order
        rows = sorted(rows, key=lambda r: (r[0], r[1] is None))
    items = _items(rows)
    finished = pl.DataFrame(
        done, schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}, orient="row"
    )
    made, expected = plan.make_plan(items, finished, doubtful), _grouped(items, finished, doubtful)
    assert made.pending.equals(expected.pending, null_equal=True)
    assert made.work.schema == expected.work.schema
    assert made.work.equals(expected.work, null_equal=True)
    assert (made.already_done, made.already_rejected, made.pairs, made.to_send, made.in_doubt) == (
        expected.already_done,
        expected.already_rejected,
        expected.pairs,
        expected.to_send,
        expected.in_doubt,
    )


# ---------------------------------------------------------------- the intake


CELLS = st.sampled_from([None, "a", "b", "A"])
NUMBERS = st.sampled_from([None, 1, 2])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(CELLS, NUMBERS, CELLS), max_size=20), st.integers(1, 7))
def test_firsts_equal_unique(
    rows: list[tuple[str | None, int | None, str | None]], pick: int
) -> None:
    """The filter that replaced ``unique(keep="first", maintain_order=True)``: the same rows."""
    frame = pl.DataFrame(rows, schema={"a": pl.String, "n": pl.Int64, "b": pl.String}, orient="row")
    subset = [c for i, c in enumerate(["a", "n", "b"]) if pick >> i & 1]
    expected = frame.unique(subset=subset, keep="first", maintain_order=True)
    assert frame.filter(intake.assemble._firsts(frame, subset)).equals(expected, null_equal=True)


def test_keys_in_chunks_equal_keys_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyed three values at a time, one prefix or several: the keys of Keyer.key."""
    monkeypatch.setattr(intake.assemble, "_KEY_CHUNK", 3)
    lines = ["email,phone"] + [f"p{i}@x.io,+7916{i:07d}" for i in range(11)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for columns in ({"email": "email"}, {"email": "email", "phone": "phone"}):
        items = intake.read(_job(tmp_path, columns=columns), KEYER).items
        assert items.height == 11 * len(columns)
        for row in items.iter_rows(named=True):
            expected = KEYER.key(
                row["db_id"], row["matching"], row["resource_id"], row["field_name"], row["value"]
            )
            assert row["key"] == expected


def test_columns_the_file_lacks_take_no_memory(tmp_path: Path) -> None:
    """One email column: the items and the work hold keys, values (and row numbers), no more."""
    lines = ["email"] + [f"nobody{i}@example.org" for i in range(50_000)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = intake.read(_job(tmp_path), KEYER).items
    empty = pl.DataFrame(schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String})
    made = plan.make_plan(items, empty, set())
    for frame, full in ((items, {"key", "value", "row"}), (made.work, {"key", "value"})):
        for column in frame.columns:
            if column in full:
                assert _size(frame, column) > 0.1, column
            elif column != "in_doubt":  # computed from the keys: one bit a row
                assert _size(frame, column) < 0.01, column
    assert made.work.get_column("request_ids").to_list()[:2] == [[None], [None]]
