"""``erasure plan``: what tonight's run (or sweep) would send, as the plan a second person signs.

The plan's document, its signatures and the check a run makes are
:mod:`erasure.approval`; this module computes *what* is planned, the same
way the command itself will: tonight's input with the earlier files' open
pairs (erasure.carry), less what the ledger finished and what a person's
decision keeps back (erasure.decisions); or a sweep's deletes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from erasure.approval import body, planner_key, sign_plan
from erasure.errors import ConfigError
from erasure.job import Job
from erasure.tonight import inputs_of, run_flags, sweep_flags, tonight_of_work

__all__ = ["inputs_of", "make", "run_flags", "sweep_flags", "tonight_of_work"]


def make(
    job: Job,
    *,
    input_path: Path | None = None,
    export: Path | None = None,
    retry_rejected: bool = False,
    include_identifier_matches: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``erasure plan``: what a run (or, with ``export``, a sweep) would send, signed."""
    from contextlib import closing

    from erasure import ledger as ledger_mod
    from erasure import validation
    from erasure.keys import Role

    if job.approval is None:
        raise ConfigError(
            "job file has no [approval] section: set signing_key_file (the planner's key), "
            "approvers and needed"
        )
    planner_key(job)  # 78 now, before any work, when it cannot sign
    at = now if now is not None else datetime.now(UTC)
    keyer = job.keyer(Role.IDENTIFIER, command="erasure plan")
    if export is not None:
        from erasure.after import sweep as sweep_mod

        with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
            found = sweep_mod.find(
                job, keyer, db, export, include_identifier=include_identifier_matches
            )
            matches = sweep_mod._held(db, job.ledger.path, found.matches)
            work = sweep_mod._plan(matches, job.sweep.database()).work
            by = {d: sum(1 for m in matches if m.decision == d) for d in sweep_mod.Decision}
            lines = [
                f"profiles in export {found.rows}",
                f"reappeared {len(matches)} = "
                + " + ".join(f"{d.value} {n}" for d, n in by.items()),
            ]
            tonight = tonight_of_work(
                "sweep", sweep_flags(include_identifier_matches),
                [(export.name, found.sha256)], work, lines,
                {"rows": found.rows, "reappeared": len(matches),
                 **{d.value: n for d, n in by.items()}},
            )  # fmt: skip
            return sign_plan(job, body(job, tonight, db, at))
    data, _ = validation.read_input(job, keyer, validation.InputOptions(input=input_path))
    if not job.ledger.path.exists():
        plan = validation.plan_from_ledger(job, keyer, data.items, retry_rejected)
        tonight = tonight_of_work(
            "run", run_flags(retry_rejected), [(data.path.name, data.sha256)], plan.work,
            validation.account_of(data, plan).lines(), validation.account_of(data, plan).as_dict(),
        )  # fmt: skip
        return sign_plan(job, body(job, tonight, None, at))
    from dataclasses import replace

    from erasure import carry, holdback

    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
        t = carry.tonight(db, job, keyer, data, retry_rejected=retry_rejected)
        plan = holdback.plan(t.items, t.finished, t.doubtful, db, job.ledger.path, at)
        account = validation.account_of(data, replace(plan, pairs=plan.pairs - t.extra))
        tonight = tonight_of_work(
            "run", run_flags(retry_rejected), inputs_of(data.path.name, data.sha256, t.info),
            plan.work, account.lines(), account.as_dict(),
        )  # fmt: skip
        return sign_plan(job, body(job, tonight, db, at))
