"""After a run's deletes, in the same run: suppression lists, then notices.

One hook for :func:`erasure.app.run` (the post-outcome queue), so that the
runner stays the deletes' alone. It runs only when the deletes ended on
their own (no stop, no fatal error): a stopped run resumes these steps next
time, since each is set arithmetic over the ledger. Its failures are never
the run's stop: they are events, counts in the summary, and exit 1 at most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import polars as pl

from erasure import logs
from erasure.run import Options
from erasure.run.summary import Summary

if TYPE_CHECKING:
    from erasure.job import Job
    from erasure.ledger import Ledger


def after_run(
    job: Job,
    token: str,
    ledger: Ledger,
    summary: Summary,
    keep: pl.DataFrame | None,
    options: Options,
) -> None:
    """Suppress what the ledger allows (``[suppress]``); counts go into ``summary``."""
    if summary.fatal is not None or summary.stop_reason is not None:
        return
    if job.suppress is not None and keep is not None:
        from erasure.after.suppress import Keeper, pending

        todo = pending(ledger.connection, job.suppress, keep)
        if todo.height:
            keeper = Keeper(
                job,
                token,
                summary.run,
                ledger.append,
                backoff=options.backoff,
                transport=options.transport,
            )
            kept = anyio.run(keeper.keep, todo)
            summary.suppressed += kept.added
            summary.suppression_failed += kept.failed
            logs.get().info(
                "erasure.suppress.finished",
                run=summary.run,
                added=kept.added,
                failed=kept.failed,
                lists_unchecked=list(kept.check_failed),
            )
