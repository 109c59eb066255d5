"""The run: a feeder, N workers and one ledger writer, under a rate ceiling.

::

    feeder ──(commit planned+sent)──► work stream ──► N workers ──► writer ──► ledger
       │                                                 │  ▲
       └── stops on a signal, the time budget,          rate limiter
           a token/unavailable answer or a ledger error

Write before destroy: the feeder commits a batch of ``sent`` intents before
it hands their requests to the workers, so that no request leaves unrecorded
and no request waits for a commit; a retry commits its own intent. After a
crash, a ``sent`` without an answer marks its key in doubt; the next run
sends it again and flags the outcome.

Nothing a request meets escapes as a traceback: every exception becomes a
verdict (:func:`erasure.altcraft.classify_exception`). One nothing foresaw
(a bug, most likely) is a transient, in-doubt failure of that identifier,
logged once as ``erasure.delete.unforeseen`` naming its type; after
:data:`UNFORESEEN_LIMIT` in a row the run stops cleanly with 70
(:class:`~erasure.errors.InternalError`), so that a bug is not retried every
night as "run again". An exception in the run's own machinery ends the same
way: the run's end is still recorded.

A clean stop (signal, time budget, a run-wide refusal) lets in-flight
requests answer for up to ``timeout_s``, then cancels them (they stay in
doubt), withdraws the intents that never left, records the rest of the plan
and the run's end. A second SIGINT cancels at once.

Longer than most modules: the run's orchestration (feeder, workers,
stops, heartbeat, the count of unforeseen errors); the parts that are a
concept of their own live beside it (writer, hopper, retry, preflight,
events, summary).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import anyio

from erasure import altcraft, logs
from erasure.altcraft import DeleteRequest, Retry
from erasure.client import make_client, send
from erasure.echoes import Echoes
from erasure.errors import ErasureError, InternalError, LedgerWriteError
from erasure.job import Job
from erasure.ledger import Event, Kind, Outcome, details
from erasure.ratelimit import RateLimiter, signal_of
from erasure.run import events as events_mod
from erasure.run.hopper import Hopper, WorkItem
from erasure.run.options import Options
from erasure.run.plan import Plan
from erasure.run.preflight import abort_error, preflight
from erasure.run.retry import Backoff, Finish, Stop, Wait, decide
from erasure.run.summary import StopReason, Summary
from erasure.run.writer import WRITER_BATCH, Appender, Writer
from erasure.wording import count

E = TypeVar("E", bound=BaseException)

# Unforeseen exceptions in a row (no other answer between them) that stop the
# run with 70: one is a transient failure of one identifier; twenty in a row is
# a bug that every retry will meet again.
UNFORESEEN_LIMIT = 20
FIRST_CHUNK = 16  # keys in the feeder's first commit: the first requests leave sooner


class Runner:
    """One run of a job over a plan. Use :meth:`execute`."""

    def __init__(
        self,
        job: Job,
        plan: Plan,
        ledger: Appender,
        run: int,
        token: str,
        options: Options,
        *,
        input_info: dict[str, Any] | None = None,
        notes: Sequence[Event] = (),
    ) -> None:
        self.job = job
        self.input_info = input_info
        self.notes = list(notes)  # invalid and resolved events, written after run_started
        self.plan = plan
        self.ledger = ledger
        self.token = token
        self.echoes = Echoes.for_run(token, job.input.phone_region)
        self.options = options
        self.backoff = options.backoff or Backoff.for_run(job.run)
        self.transport = options.transport
        self.log = logs.get().bind(run=run)
        self.summary = Summary(
            run=run,
            planned_pairs=plan.pairs,
            planned_keys=plan.to_send,
            already_done=plan.already_done,
            already_rejected=plan.already_rejected,
            invalid=int((input_info or {}).get("invalid", 0)),
            set_aside=plan.held + plan.cancelled,
        )
        if options.pacer is not None:
            self.limiter = options.pacer()
        elif job.run.auto_rate:
            self.limiter = RateLimiter.auto(job.run.ceiling_per_s)
        else:
            self.limiter = RateLimiter(job.run.ceiling_per_s)
        self.stop = anyio.Event()
        self._fed = 0  # rows of plan.work handed to the feeder so far
        self._withdrawn: list[WorkItem] = []
        self._bar: Any = None
        self._in_flight = 0  # requests sent and not yet answered, now
        self._unforeseen_in_a_row = 0

    # ------------------------------------------------------------ stopping

    def request_stop(self, reason: StopReason, detail: str | None = None) -> None:
        if self.summary.stop_reason is None:
            self.summary.stop_reason = reason
            self.summary.stop_detail = detail
            self.log.warning("erasure.run.stopping", reason=reason, detail=detail)
        self.stop.set()

    # ------------------------------------------------------------ events

    def _event(self, kind: Kind, **values: Any) -> Event:
        return Event(kind, self.summary.run, **values)

    def _on_commit(self, events: Sequence[Event]) -> None:
        done_keys = 0
        for e in events:
            if e.kind is Kind.OUTCOME and e.run:  # run 0: a person's decision (held_back)
                if e.outcome is not None:
                    self.summary.outcomes[e.outcome] += 1
                self.summary.in_doubt += e.in_doubt or 0
                done_keys += 1
        if self._bar is not None and done_keys:
            self._bar.update(done_keys)
            self._bar.set_postfix(
                {o.value: self.summary.outcomes[o] for o in Outcome if self.summary.outcomes[o]},
                refresh=False,
            )

    # ------------------------------------------------------------ the run

    async def execute(self) -> Summary:
        """Run to the end or to a stop.

        Never raises for a user's mistake: an :class:`ErasureError` from
        anywhere in the run (a CA bundle that cannot be read, a ledger that
        cannot be written) ends in ``summary.fatal``, for the CLI's one line.
        """
        writer = Writer(self.ledger, self._on_commit)
        writer.on_error = lambda exc: self.request_stop(StopReason.LEDGER, str(exc))
        self.writer = writer
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(writer.run)
                try:
                    await self._main()
                finally:
                    await writer.close()
        except* ErasureError as group:
            self.summary.fatal = _first(group)
        except* Exception as group:
            # A bug in the run's own machinery: the run ends as cleanly as a
            # stop does (app.run records its end); the one line names the type.
            name = type(_first(group)).__name__
            self.log.error("erasure.run.internal_error", exception=name)
            if self.summary.fatal is None:
                self.summary.fatal = InternalError(_internal_words(name))
        finally:
            self.summary.finished = time.monotonic()
            if self._bar is not None:
                self._bar.close()
        if writer.error is not None and self.summary.stop_reason is None:
            self.request_stop(StopReason.LEDGER, str(writer.error))
        return self.summary

    async def _main(self) -> None:
        job = self.job
        started = self._event(Kind.RUN_STARTED, detail=self._start_detail())
        await self.writer.commit([started, *self.options.first_events, *self.notes])
        async with make_client(job, self.token, transport=self.transport) as client:
            self.client = client
            async with anyio.create_task_group() as guard:
                if self.options.install_signal_handlers:
                    guard.start_soon(self._watch_signals)
                if self.options.deadline is not None:
                    guard.start_soon(self._watch_deadline, self.options.deadline)
                guard.start_soon(self._heartbeat)
                if self.options.decisions is not None:
                    guard.start_soon(self._poll_decisions)
                try:
                    # nothing to send: no preflight, no request at all
                    if job.run.preflight and self.plan.to_send:
                        try:
                            await self._preflight()
                        except ErasureError as exc:
                            # tasks groups would wrap it; the CLI reads it from the summary
                            self.summary.fatal = exc
                            self.stop.set()
                            self.log.error("erasure.preflight.failed", error=str(exc))
                    if not self.stop.is_set() and self.plan.to_send:
                        self._open_bar()
                        await self._work()
                finally:
                    guard.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._record_rest()

    def _start_detail(self) -> str:
        # a run's own detail keeps its shape; another command's run says which it is
        return details.encode(
            details.RunStartedDetail(
                command=None if self.options.command == "run" else self.options.command,
                settings=self.job.settings(),
                input=None if self.input_info is None else details.RunInput.of(self.input_info),
                plan=details.PlanCounts(
                    pairs=self.summary.planned_pairs,
                    keys=self.summary.planned_keys,
                    already_done=self.summary.already_done,
                    in_doubt=self.plan.in_doubt,
                    # a person's decisions keep these back (named only when there are any)
                    held=self.plan.held,
                    cancelled=self.plan.cancelled,
                ),
            )
        )

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.stop.is_set() and signum == signal.SIGINT:
                    self.log.warning("erasure.run.cancelled", signal=signum.name)
                    if self._work_scope is not None:
                        self._work_scope.cancel()
                else:
                    self.request_stop(StopReason.SIGNAL, signal.Signals(signum).name)
                    wait_s = self.job.api.timeout_s + 1.0
                    self.log.warning(
                        "erasure.run.interrupted",
                        in_flight=self._in_flight,
                        wait_s=wait_s,
                        message=f"{count(self._in_flight, 'delete')} in flight: waiting up to"
                        f" {wait_s:g} s for their answers; Ctrl-C again stops now"
                        " (they stay in doubt, and the next run settles them)",
                    )

    async def _heartbeat(self) -> None:
        """A log line every ``heartbeat_s`` while the run lives: a hang, a long
        Retry-After or a backoff never looks like a dead process."""
        while True:
            await anyio.sleep(self.options.heartbeat_s)
            s = self.summary
            self.log.info(
                "erasure.run.heartbeat",
                done=sum(s.outcomes.values()),
                of=s.planned_pairs,
                in_flight=self._in_flight,
                requests=s.requests,
                elapsed_s=round(s.duration_s, 1),
            )

    async def _poll_decisions(self) -> None:
        """Every ``poll_s``: append the queued holds and cancellations, and honour them."""
        live = self.options.decisions
        while True:
            events, upto = await anyio.to_thread.run_sync(live.poll)
            if events:
                try:
                    await self.writer.commit(events)
                    # the ledger's other pairs they name (tonight's: the gate's work)
                    keys = self._tonight_keys()
                    more = await anyio.to_thread.run_sync(live.outcomes, keys)
                    await self.writer.commit(more)
                except LedgerWriteError:
                    return
                self.log.info(
                    "erasure.decisions.applied",
                    events=len(events),
                    kinds=sorted({e.kind.value for e in events}),
                )
            if upto:
                await anyio.to_thread.run_sync(live.appended, upto)
            await anyio.sleep(live.poll_s)

    _keys: frozenset[str] | None = None

    def _tonight_keys(self) -> frozenset[str]:
        if self._keys is None:
            self._keys = frozenset(self.plan.work.get_column("key").to_list())
        return self._keys

    def _blocked(self, item: WorkItem) -> bool:
        """Whether a hold or a cancellation now forbids sending ``item``: its pairs say so."""
        live = self.options.decisions
        why = None if live is None else live.gate.blocks(item.key, item.request_ids)
        if why is None:
            return False
        self.summary.held_back += len(item.request_ids)
        self.log.info("erasure.delete.held_back", key=item.key, decision=why.value)
        # run 0: a person's decision, not this run's answer (the key's doubt stays)
        detail = details.encode(details.DecisionOutcome(why.value, self.summary.run))
        self.writer.put(
            [
                Event(Kind.OUTCOME, 0, key=item.key, request_id=rid,
                      outcome=Outcome(why.value), detail=detail)
                for rid in item.request_ids
            ]
        )  # fmt: skip
        return True

    async def _watch_deadline(self, deadline: float) -> None:
        await anyio.sleep(max(0.0, deadline - time.monotonic()))
        self.request_stop(StopReason.DEADLINE, "the time budget is used up")

    def _open_bar(self) -> None:
        if not self.options.progress:
            return
        from tqdm import tqdm  # only for people at a terminal

        self._bar = tqdm(total=self.summary.planned_pairs, unit="id", desc="erasing", smoothing=0.1)

    # ------------------------------------------------------------ preflight

    async def _preflight(self) -> None:
        """One delete of an address that cannot exist, before any real one."""
        db_id = self.job.input.db_id
        if db_id is None:
            db_id = int(self.plan.work.item(0, "db_id")) if self.plan.to_send else 1
        verdict = await preflight(self.job, db_id, self._send_once, self.backoff)
        self.summary.preflight = Outcome.NOT_FOUND.value
        self.log.info("erasure.preflight.passed", error_code=verdict.code)

    # ------------------------------------------------------------ sending

    async def _send_once(self, request: DeleteRequest) -> altcraft.Verdict:
        verdict, _ = await self._send_answered(request)
        return verdict

    async def _send_answered(
        self, request: DeleteRequest
    ) -> tuple[altcraft.Verdict, altcraft.Answer | None]:
        """The verdict, and the answer it was judged from (None: no answer came).

        Total: every exception becomes a verdict (a bug's as ``Retry.unforeseen``);
        cancellation (a ``BaseException``) passes through, as it must.
        """
        granted = await self.limiter.acquire()
        self.summary.requests += 1
        self._in_flight += 1
        try:
            answer = await send(self.client, request, self.token, self.job.api.format)
            verdict: altcraft.Verdict = altcraft.classify(answer, self.job.api.codes)
            answered: altcraft.Answer | None = answer
        except Exception as exc:  # send() raises TransportFailure only; a bug raises anything
            verdict = altcraft.classify_exception(exc)
            answered = None
        finally:
            self._in_flight -= 1
        # The shared pace follows the answers; Retry-After delays only this
        # identifier (the worker waits it out), not every other request.
        self.limiter.observe(self.limiter.now() - granted, signal_of(verdict))
        self._count_unforeseen(verdict)
        return verdict, answered

    def _count_unforeseen(self, verdict: altcraft.Verdict) -> None:
        """Stop the run (70) at the :data:`UNFORESEEN_LIMIT`-th unforeseen failure in a row."""
        name = verdict.unforeseen if isinstance(verdict, Retry) else None
        if name is None:
            self._unforeseen_in_a_row = 0
            return
        self._unforeseen_in_a_row += 1
        if self._unforeseen_in_a_row == UNFORESEEN_LIMIT:
            error = InternalError(_internal_words(name, UNFORESEEN_LIMIT))
            if self.summary.fatal is None:
                self.summary.fatal = error
            self.request_stop(StopReason.INTERNAL, str(error))

    _work_scope: anyio.CancelScope | None = None

    async def _work(self) -> None:
        hopper = Hopper(low=self.job.run.concurrency)
        async with anyio.create_task_group() as watch:
            watch.start_soon(self._grace_then_cancel)
            with anyio.CancelScope() as scope:
                self._work_scope = scope
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._feed, hopper)
                    for _ in range(self.job.run.concurrency):
                        tg.start_soon(self._worker, hopper)
            watch.cancel_scope.cancel()
        self._work_scope = None
        # whatever the feeder committed but no worker took never left
        self._withdrawn.extend(hopper.drain())

    async def _grace_then_cancel(self) -> None:
        await self.stop.wait()
        await anyio.sleep(self.job.api.timeout_s + 1.0)
        if self._work_scope is not None:
            self.log.warning("erasure.run.cancelling_in_flight")
            self._work_scope.cancel()

    def _items(self, batch: int) -> Iterator[list[tuple[WorkItem, dict[str, Any]]]]:
        """The plan's rows in chunks of ``batch``, the first one smaller.

        The first commit is all that stands between the preflight's answer
        and the first real request: a chunk of :data:`FIRST_CHUNK` commits in
        a few milliseconds where one of 256 took about 60 (bench/dispatch.py).
        """
        work = self.plan.work
        offset = 0
        size = min(batch, FIRST_CHUNK)
        while offset < work.height:
            rows = work.slice(offset, size).iter_rows(named=True)
            yield [(events_mod.work_item(row), row) for row in rows]
            offset += size
            size = batch

    async def _feed(self, hopper: Hopper) -> None:
        batch = max(64, self.job.run.concurrency)
        try:
            for chunk in self._items(batch):
                await hopper.wait_for_room()
                if self.stop.is_set():
                    return
                events: list[Event] = []
                for item, row in chunk:
                    events += events_mod.planned(self.summary.run, item.key, row)
                    events.append(self._event(Kind.SENT, key=item.key, attempt=1))
                try:
                    await self.writer.commit(events)
                except LedgerWriteError:
                    return
                self._fed += len(chunk)
                hopper.put_many(item for item, _ in chunk)
        finally:
            hopper.close()

    async def _worker(self, hopper: Hopper) -> None:
        while (item := await hopper.get()) is not None:
            if self.stop.is_set() or self._blocked(item):
                self._withdrawn.append(item)
                continue
            await self._erase(item)

    async def _erase(self, item: WorkItem) -> None:
        doubt = item.in_doubt
        attempt = 1
        while True:
            if attempt > 1:
                if self._blocked(item):
                    return  # left open; its last request was answered or is flagged
                try:
                    await self.writer.commit(
                        [self._event(Kind.SENT, key=item.key, attempt=attempt)]
                    )
                except LedgerWriteError:
                    return
                if self.stop.is_set():
                    self.writer.put([self._event(Kind.WITHDRAWN, key=item.key, attempt=attempt)])
                    return
            verdict, answer = await self._send_answered(item.request)
            if isinstance(verdict, Retry) and verdict.unforeseen is not None:
                self.log.error(
                    "erasure.delete.unforeseen",
                    key=item.key,
                    attempt=attempt,
                    exception=verdict.unforeseen,
                )
            decision = decide(verdict, attempt, self.backoff, in_doubt=doubt, rand=random.random())
            if isinstance(decision, Finish):
                if decision.gave_up is not None and isinstance(verdict, Retry):
                    self.log.warning(
                        "erasure.delete.gave_up",
                        key=item.key,
                        attempts=attempt,
                        why=decision.gave_up.value,
                        reason=verdict.reason,
                        detail=_words(verdict),
                    )
                self.writer.put(
                    events_mod.outcomes(
                        self.summary.run,
                        item,
                        attempt,
                        decision.outcome,
                        decision.in_doubt,
                        verdict,
                        self.echoes,
                        answer,
                    )
                )
                return
            self.writer.put(
                [events_mod.attempt(self.summary.run, item, attempt, verdict, self.echoes)]
            )
            if isinstance(decision, Stop):
                assert isinstance(verdict, altcraft.Abort)
                reason = StopReason.TOKEN if decision.kind == "token" else StopReason.UNAVAILABLE
                self.request_stop(reason, str(abort_error(verdict, self.job.api.base_url)))
                return
            assert isinstance(decision, Wait) and isinstance(verdict, Retry)
            doubt = decision.in_doubt
            self.log.debug(
                "erasure.retry.scheduled",
                key=item.key,
                attempt=attempt,
                reason=verdict.reason,
                detail=_words(verdict),
                wait_s=round(decision.seconds, 3),
            )
            with anyio.move_on_after(decision.seconds):
                await self.stop.wait()
            if self.stop.is_set():
                return  # left pending; its last request was answered or is flagged
            attempt += 1

    # ------------------------------------------------------------ the end

    async def _record_rest(self) -> None:
        """Withdraw intents that never left; record the plan's unreached pairs.

        Recording the unreached pairs lets the report list them as pending
        (with their deadlines). It is bounded (``Options.record_on_stop_max``
        keys) so that a clean stop of a huge plan still stops promptly; the
        rest is counted in the run's end as ``unrecorded`` and is planned
        again by the next run.
        """
        events = [self._event(Kind.WITHDRAWN, key=i.key, attempt=1) for i in self._withdrawn]
        self.summary.withdrawn = len(self._withdrawn)
        work = self.plan.work
        end = min(work.height, self._fed + self.options.record_on_stop_max)
        for offset in range(self._fed, end, WRITER_BATCH):
            rows = work.slice(offset, min(WRITER_BATCH, end - offset)).iter_rows(named=True)
            for row in rows:
                events += events_mod.planned(self.summary.run, row["key"], row)
            try:
                await self.writer.commit(events)
            except LedgerWriteError:
                return  # the run already stops with 74; the next run plans them again
            events = []
        self.writer.put(events)
        if end < work.height:
            self.summary.unrecorded = work.height - end
            self.log.info("erasure.plan.unrecorded", keys=self.summary.unrecorded)


def _first(group: BaseExceptionGroup[E]) -> E:
    """The first error of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _internal_words(name: str, in_a_row: int | None = None) -> str:
    """The one line of a stop for a bug: the exception's type, never its message."""
    times = f" {in_a_row} times in a row" if in_a_row else ""
    return (
        f"internal error: unforeseen {name}{times}; the run stopped cleanly and everything "
        "recorded stays (a bug: please report it with the exception's name)"
    )


def _words(verdict: Retry) -> str:
    """A transient failure in words: the transport's line, or the HTTP status."""
    if verdict.detail:
        return verdict.detail
    return f"HTTP {verdict.http_status}" if verdict.http_status is not None else verdict.reason
