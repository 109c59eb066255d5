"""After a run's deletes, in the same run: suppression lists, then notices.

One hook for :func:`erasure.app.run` (the post-outcome queue), so that the
runner stays the deletes' alone. Suppression runs only when the deletes
ended on their own (no stop, no fatal error): a stopped run resumes it next
time, since it is set arithmetic over the ledger. Notices are queued for
every run that could write its ledger, and delivered only by a run that
was not stopped (a SIGTERM never waits for a slow receiver). Neither ever
stops the run: failures are events, counts in the summary, exit 1 at most
for suppression, nothing for notices.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import anyio
import polars as pl

from erasure import logs
from erasure.errors import ErasureError, StateDisagrees
from erasure.run import Options
from erasure.run.summary import StopReason, Summary

if TYPE_CHECKING:
    from erasure.after.suppress import Checked
    from erasure.job import Job
    from erasure.ledger import Ledger


def before_run(
    job: Job, token: str, keep: pl.DataFrame | None, options: Options
) -> dict[int, Checked] | None:
    """The preflight of ``[suppress]``: each list checked before any delete.

    A failed check stops nothing (the deletes go on); the additions to that
    list then end ``check_failed`` and the run exits 1. None when there is
    nothing to check (``[suppress]`` off, ``[run] preflight = false``, or no
    email or phone in tonight's input: the additions check then).
    """
    if job.suppress is None or keep is None or not keep.height or not job.run.preflight:
        return None
    from erasure.after.suppress import Keeper

    keeper = Keeper(job, token, 0, _nowhere, transport=options.transport)
    checked = anyio.run(keeper.check_all)
    for list_id, answer in checked.items():
        if not answer.ok:
            logs.get().error("erasure.suppress.check_failed", list=list_id, reason=answer.reason)
    return checked


def _nowhere(events: object) -> None:
    raise AssertionError("a check records nothing")  # pragma: no cover


def after_run(
    job: Job,
    token: str,
    ledger: Ledger,
    summary: Summary,
    keep: pl.DataFrame | None,
    options: Options,
    checked: dict[int, Checked] | None = None,
) -> None:
    """Suppress (``[suppress]``), then queue and send notices (``[notify]``)."""
    stopped = summary.fatal is not None or summary.stop_reason is not None
    if summary.stop_reason is not StopReason.LEDGER and (job.suppress or job.notify):
        from erasure.after.suppressions import ensure_indexes

        try:
            ensure_indexes(ledger.connection)
        except sqlite3.Error as exc:  # a full disk: the scans still work without them
            logs.get().warning("erasure.after.no_index", error=str(exc))
    if not stopped and job.suppress is not None and keep is not None:
        try:
            _suppress(job, token, ledger, summary, keep, options, checked)
        except StateDisagrees as exc:  # the ledger's state is not to be trusted: 78
            summary.fatal = exc
            return
    if job.notify is not None and summary.stop_reason is not StopReason.LEDGER:
        try:
            _notify(job, ledger, summary.run, deliver=not stopped)
        except ErasureError as exc:  # a notice never changes the run's exit code
            logs.get().warning("erasure.notice.not_sent", run=summary.run, error=str(exc))


def _suppress(
    job: Job,
    token: str,
    ledger: Ledger,
    summary: Summary,
    keep: pl.DataFrame,
    options: Options,
    checked: dict[int, Checked] | None,
) -> None:
    from erasure.after.suppress import Keeper, pending

    assert job.suppress is not None
    todo = pending(ledger.connection, job.suppress, keep)
    if not todo.height:
        return
    keeper = Keeper(
        job,
        token,
        summary.run,
        ledger.append,
        backoff=options.backoff,
        transport=options.transport,
    )
    kept = anyio.run(keeper.keep, todo, checked)
    summary.suppressed += kept.added
    summary.suppression_failed += kept.failed
    logs.get().info(
        "erasure.suppress.finished",
        run=summary.run,
        added=kept.added,
        failed=kept.failed,
        lists_unchecked=list(kept.check_failed),
    )


def _notify(job: Job, ledger: Ledger, run: int, *, deliver: bool) -> None:
    from erasure.after import notify

    assert job.notify is not None
    db = ledger.connection
    issuer = notify.ReceiptIssuer(job) if job.receipts is not None else None
    queued = notify.queue(db, job.notify, run, notify.touched(db, run), issuer)
    ledger.append(queued)
    if not deliver or not queued:
        return
    mine = {e.request_id for e in queued}
    todo = [p for p in notify.undelivered(db) if p.request_id in mine]
    deliverer = notify.Deliverer(job.notify, notify.secret(job), run, ledger.append)
    try:
        sent, left = deliverer.deliver_all(todo)
    finally:
        deliverer.close()
    logs.get().info("erasure.notice.sent", run=run, queued=len(queued), sent=sent, left=left)
