"""One run's sending and its recorded end, as ``erasure run`` and ``erasure sweep`` both do it.

What each command does before (reading its input, planning, the four-eyes
check) and what its exit code means differ; what follows the plan does
not: a person's decisions watched live (:func:`erasure.holdback.live`), the
:class:`~erasure.run.Runner` on its event loop, then the ``run_finished``
event, whose write failing still ends the run with the failure recorded in
its summary (74), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from erasure.errors import ErasureError, ExitCode
from erasure.loops import loop_options
from erasure.run.summary import Summary, finish_event

if TYPE_CHECKING:
    from erasure.job import Job
    from erasure.ledger import Event, Ledger
    from erasure.run.options import Options
    from erasure.run.plan import Plan

__all__ = ["execute"]


def execute(
    job: Job,
    plan: Plan,
    ledger: Ledger,
    run: int,
    token: str,
    options: Options,
    *,
    exit_code: Callable[[Summary], ExitCode],
    input_info: dict[str, Any] | None = None,
    notes: Sequence[Event] = (),
    after: Callable[[Summary], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Summary, ExitCode]:
    """Send ``plan``'s work as run ``run``, then record its end; its summary and exit code.

    ``exit_code`` says what the summary means for this command; ``after``
    runs between the sending and the recorded end (``run``'s suppression and
    notices, its carried-over files), so that the end records what it did.
    """
    import anyio

    from erasure import holdback
    from erasure.run.runner import Runner

    live = holdback.live(ledger.path, plan.work, clock)
    runner = Runner(
        job,
        plan,
        ledger,
        run,
        token,
        replace(options, decisions=live),
        input_info=input_info,
        notes=notes,
    )
    try:
        summary = anyio.run(runner.execute, backend_options=loop_options())
    finally:
        live.close()
    if after is not None:
        after(summary)
    code = exit_code(summary)
    try:
        ledger.append([finish_event(run, summary, code)])
    except ErasureError as exc:
        if summary.fatal is None:
            summary.fatal = exc
        code = exit_code(summary)
    return summary, code
