"""Details of hand-made ledgers' run events, in the shape a run writes (erasure.ledger.details).

``erasure verify`` decodes every detail by its kind: a test ledger's
``run_started`` and ``run_finished`` carry what a real run's do.
"""

from __future__ import annotations

from typing import Any

from erasure.ledger import details as D


def started(settings: dict[str, Any] | None = None) -> str:
    """A ``run_started`` detail: these settings, no input file, nothing planned."""
    plan = D.PlanCounts(pairs=0, keys=0, already_done=0, in_doubt=0)
    return D.encode(D.RunStartedDetail(settings or {}, None, plan))


def finished(exit_code: int = 0, run: int = 1) -> str:
    """A ``run_finished`` detail: this exit code, nothing counted."""
    zero = dict.fromkeys(
        ("planned_pairs", "planned_keys", "already_done", "pending", "requests", "in_doubt"), 0
    )
    counts = {**zero, "invalid": 0, "withdrawn": 0, "unrecorded": 0}
    return D.encode(
        D.RunFinishedDetail(
            run=run, outcomes={}, duration_s=0.0, stop_reason=None, preflight=None, error=None,
            exit_code=exit_code, **counts,
        )
    )  # fmt: skip


STARTED = started()
FINISHED = finished()


def extended(to: str) -> str:
    """An ``extended`` detail moving the deadline to the day ``to`` (ISO date), as extend writes."""
    return D.encode(
        D.ExtendedDetail(
            original_due=to, previous_due=to, extended_to=to, by="1 month", rule="30 days",
            timezone="UTC", informed_at="2026-01-01", reason="test", who="test@host",
        )
    )  # fmt: skip
