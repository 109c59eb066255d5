"""Tonight's work as the pairs a run or a sweep would send: what a plan signs and a run checks.

Pure helpers shared by ``erasure plan`` (:mod:`erasure.planning`), ``run``
(:mod:`erasure.app`) and ``sweep`` (:mod:`erasure.after.sweep`), kept apart
from the plan command so that none of them imports another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from erasure.approval import Tonight

__all__ = ["inputs_of", "run_flags", "sweep_flags", "tonight_of_work"]


def tonight_of_work(
    command: str,
    flags: Sequence[str],
    inputs: Sequence[tuple[str, str]],
    work: Any,
    words_: Sequence[str] = (),
    counts: dict[str, Any] | None = None,
) -> Tonight:
    """From a plan's work frame (key, db_id, request_ids): the pairs it would send."""
    pairs: list[tuple[str | None, str]] = []
    db_ids: set[int] = set()
    if work.height:
        for key, db_id, rids in work.select("key", "db_id", "request_ids").iter_rows():
            db_ids.add(int(db_id))
            pairs.extend((rid, key) for rid in rids)
    return Tonight(
        command, tuple(sorted(flags)), tuple(inputs), tuple(sorted(db_ids)), tuple(pairs),
        tuple(words_), counts or {},
    )  # fmt: skip


def run_flags(retry_rejected: bool) -> tuple[str, ...]:
    return ("--retry-rejected",) if retry_rejected else ()


def sweep_flags(include_identifier_matches: bool) -> tuple[str, ...]:
    return ("--include-identifier-matches",) if include_identifier_matches else ()


def inputs_of(name: str, sha256: str, info: dict[str, Any]) -> list[tuple[str, str]]:
    """Tonight's input and the earlier files whose open pairs it carries (erasure.carry)."""
    carried = [(Path(str(c["path"])).name, str(c["sha256"])) for c in info.get("carried", [])]
    return [(name, sha256), *carried]
