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

A clean stop (signal, time budget, a run-wide refusal) lets in-flight
requests answer for up to ``timeout_s``, then cancels them (they stay in
doubt), withdraws the intents that never left, records the rest of the plan
and the run's end. A second SIGINT cancels at once.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import anyio
import httpx

from erasure import altcraft, logs
from erasure.altcraft import Abort, DeleteRequest, Erased, NotFound, Rejected, Retry
from erasure.client import make_client, send
from erasure.errors import (
    ErasureError,
    ExitCode,
    LedgerWriteError,
    PreflightUnexpected,
    ServiceUnavailable,
    TokenRefused,
    Unreachable,
    WrongEndpoint,
    worst,
)
from erasure.job import Job
from erasure.ledger import Event, Kind, Ledger, Outcome
from erasure.plan import Plan
from erasure.ratelimit import RateLimiter, signal_of

StopReason = Literal["signal", "deadline", "token", "unavailable", "ledger"]
_STOP_CODES: dict[StopReason, ExitCode] = {
    "signal": ExitCode.TEMPFAIL,
    "deadline": ExitCode.TEMPFAIL,
    "token": ExitCode.NOPERM,
    "unavailable": ExitCode.UNAVAILABLE,
    "ledger": ExitCode.IOERR,
}
BACKOFF_BASE_S = 0.25  # seconds: the first retry waits up to this long
BACKOFF_CAP_S = 30.0  # seconds: no backoff (without Retry-After) waits longer
WRITER_BATCH = 4096  # events per commit at most
RECORD_ON_STOP_MAX = 50_000  # unreached keys recorded as planned on a stop, at most


def full_jitter(attempt: int) -> float:
    """Seconds to wait before request ``attempt + 1``: exponential, full jitter.

    Full jitter (uniform between 0 and the exponential bound) spreads the
    retries of many workers that failed together, so that they do not come
    back together. The module's constants are read at each call, so that
    in-process tests can shorten the waits.
    """
    bound = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return random.uniform(0, bound)


@dataclass(frozen=True, slots=True)
class Options:
    deadline: float | None = None  # time.monotonic() at which to stop cleanly
    progress: bool = False  # draw a tqdm bar on stderr
    install_signal_handlers: bool = True


@dataclass(slots=True)
class Summary:
    """What a run did; the CLI prints it and picks the exit code from it."""

    run: int
    planned_pairs: int
    planned_keys: int
    already_done: int
    already_rejected: int
    outcomes: Counter[str] = field(default_factory=Counter)  # pairs, this run
    requests: int = 0  # requests sent, retries included
    in_doubt: int = 0  # outcomes recorded with the in-doubt flag
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stop_reason: StopReason | None = None
    stop_detail: str | None = None
    preflight: str | None = None
    withdrawn: int = 0
    unrecorded: int = 0  # keys of the plan neither reached nor recorded (a huge plan, stopped)
    fatal: ErasureError | None = None  # what stopped the run as a whole, if anything

    @property
    def pending(self) -> int:
        done = sum(self.outcomes[o] for o in (Outcome.ERASED, Outcome.NOT_FOUND, Outcome.REJECTED))
        return self.planned_pairs - done

    @property
    def duration_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def exit_code(self) -> ExitCode:
        codes = [ExitCode.OK]
        if self.fatal is not None:
            codes.append(self.fatal.exit_code)
        if self.stop_reason is not None:
            codes.append(_STOP_CODES[self.stop_reason])
        if self.pending:
            codes.append(ExitCode.TEMPFAIL)
        if self.outcomes[Outcome.REJECTED] or self.already_rejected:
            codes.append(ExitCode.REJECTED)
        return worst(*codes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "planned_pairs": self.planned_pairs,
            "planned_keys": self.planned_keys,
            "already_done": self.already_done,
            "outcomes": {o.value: self.outcomes[o] for o in Outcome if o != Outcome.PENDING},
            "pending": self.pending,
            "requests": self.requests,
            "in_doubt": self.in_doubt,
            "withdrawn": self.withdrawn,
            "unrecorded": self.unrecorded,
            "duration_s": round(self.duration_s, 3),
            "stop_reason": self.stop_reason,
            "preflight": self.preflight,
            "error": None if self.fatal is None else str(self.fatal),
        }


@dataclass(frozen=True, slots=True)
class WorkItem:
    key: str
    request: DeleteRequest
    request_ids: Sequence[str | None]
    in_doubt: bool


class Writer:
    """The ledger's single writer: batches events and commits them in a thread."""

    def __init__(self, ledger: Ledger, on_commit: Callable[[Sequence[Event]], None]) -> None:
        self._ledger = ledger
        self._on_commit = on_commit
        self._send, self._recv = anyio.create_memory_object_stream[
            tuple[Sequence[Event], anyio.Event | None]
        ](math.inf)
        self.error: LedgerWriteError | None = None
        self.on_error: Callable[[LedgerWriteError], None] = lambda exc: None

    async def run(self) -> None:
        async with self._recv:
            async for events, waiter in self._recv:
                batch = list(events)
                waiters = [waiter] if waiter else []
                while len(batch) < WRITER_BATCH:
                    try:
                        more, w = self._recv.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    batch.extend(more)
                    if w:
                        waiters.append(w)
                if self.error is None and batch:
                    try:
                        await anyio.to_thread.run_sync(self._ledger.append, batch)
                    except LedgerWriteError as exc:
                        self.error = exc
                        self.on_error(exc)
                    else:
                        self._on_commit(batch)
                for w in waiters:
                    w.set()

    async def commit(self, events: Sequence[Event]) -> None:
        """Queue ``events`` and return once they are durable (or raise)."""
        if self.error is not None:
            raise self.error
        done = anyio.Event()
        await self._send.send((events, done))
        await done.wait()
        if self.error is not None:
            raise self.error

    def put(self, events: Sequence[Event]) -> None:
        """Queue ``events`` without waiting for the commit."""
        if events:
            self._send.send_nowait((events, None))

    async def close(self) -> None:
        await self._send.aclose()


class _Hopper:
    """Items whose intents are committed, waiting for a worker.

    A plain deque instead of an anyio memory stream: a stream costs a trip
    through the scheduler and a task lookup per item, about an eighth of a
    run's CPU at thousands of deletes a second. A worker takes an item
    without yielding and waits only when the hopper is empty; the feeder
    waits while it holds ``low`` items or more, so that intents are
    committed a little ahead of the workers and no further.
    """

    def __init__(self, low: int) -> None:
        self._items: deque[WorkItem] = deque()
        self._low = low
        self._closed = False
        # Events are replaced only once set: a waiter always waits on the current one.
        self._more = anyio.Event()  # items arrived, or the hopper closed
        self._room = anyio.Event()  # the items fell below ``low``

    def put_many(self, items: Iterable[WorkItem]) -> None:
        self._items.extend(items)
        self._more.set()

    def close(self) -> None:
        self._closed = True
        self._more.set()

    async def get(self) -> WorkItem | None:
        """The next item; None once the hopper is closed and empty."""
        while True:
            if self._items:
                item = self._items.popleft()
                if len(self._items) < self._low:
                    self._room.set()
                return item
            if self._closed:
                return None
            if self._more.is_set():
                self._more = anyio.Event()
            await self._more.wait()

    async def wait_for_room(self) -> None:
        while len(self._items) >= self._low:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()

    def drain(self) -> list[WorkItem]:
        items = list(self._items)
        self._items.clear()
        return items


class Runner:
    """One run of a job over a plan. Use :meth:`execute`."""

    def __init__(
        self,
        job: Job,
        plan: Plan,
        ledger: Ledger,
        run: int,
        token: str,
        options: Options,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        input_info: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.input_info = input_info
        self.plan = plan
        self.ledger = ledger
        self.token = token
        self.options = options
        self.transport = transport
        self.log = logs.get().bind(run=run)
        self.summary = Summary(
            run=run,
            planned_pairs=plan.pairs,
            planned_keys=plan.to_send,
            already_done=plan.already_done,
            already_rejected=plan.already_rejected,
        )
        self.limiter = (
            RateLimiter.auto(job.run.ceiling_per_s)
            if job.run.auto_rate
            else RateLimiter(job.run.ceiling_per_s)
        )
        self.stop = anyio.Event()
        self._fed = 0  # rows of plan.work handed to the feeder so far
        self._withdrawn: list[WorkItem] = []
        self._bar: Any = None

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
            if e.kind is Kind.OUTCOME:
                self.summary.outcomes[e.outcome or ""] += 1
                self.summary.in_doubt += e.in_doubt or 0
                done_keys += 1
        if self._bar is not None and done_keys:
            self._bar.update(done_keys)
            self._bar.set_postfix(
                {o.value: self.summary.outcomes[o] for o in Outcome if o != Outcome.PENDING},
                refresh=False,
            )

    def _planned(self, key: str, row: dict[str, Any]) -> list[Event]:
        out = []
        for rid, received in zip(row["request_ids"], row["received_ats"], strict=True):
            out.append(
                self._event(
                    Kind.PLANNED,
                    key=key,
                    request_id=rid,
                    db_id=row["db_id"],
                    matching=row["matching"],
                    resource_id=row["resource_id"],
                    field_name=row["field_name"],
                    received_at=_iso(received),
                )
            )
        return out

    # ------------------------------------------------------------ the run

    async def execute(self) -> Summary:
        """Run to the end or to a stop.

        Never raises for a user's mistake: an :class:`ErasureError` from
        anywhere in the run (a CA bundle that cannot be read, a ledger that
        cannot be written) ends in ``summary.fatal``, for the CLI's one line.
        """
        writer = Writer(self.ledger, self._on_commit)
        writer.on_error = lambda exc: self.request_stop("ledger", str(exc))
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
        finally:
            self.summary.finished = time.monotonic()
            if self._bar is not None:
                self._bar.close()
        if writer.error is not None and self.summary.stop_reason is None:
            self.request_stop("ledger", str(writer.error))
        return self.summary

    async def _main(self) -> None:
        job = self.job
        await self.writer.commit([self._event(Kind.RUN_STARTED, detail=self._start_detail())])
        async with make_client(job, self.token, transport=self.transport) as client:
            self.client = client
            async with anyio.create_task_group() as guard:
                if self.options.install_signal_handlers:
                    guard.start_soon(self._watch_signals)
                if self.options.deadline is not None:
                    guard.start_soon(self._watch_deadline, self.options.deadline)
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
        return json.dumps(
            {
                "settings": self.job.settings(),
                "input": self.input_info,
                "plan": {
                    "pairs": self.summary.planned_pairs,
                    "keys": self.summary.planned_keys,
                    "already_done": self.summary.already_done,
                    "in_doubt": self.plan.in_doubt,
                },
            },
            sort_keys=True,
        )

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.stop.is_set() and signum == signal.SIGINT:
                    self.log.warning("erasure.run.cancelled", signal=signum.name)
                    if self._work_scope is not None:
                        self._work_scope.cancel()
                else:
                    self.request_stop("signal", signal.Signals(signum).name)

    async def _watch_deadline(self, deadline: float) -> None:
        await anyio.sleep(max(0.0, deadline - time.monotonic()))
        self.request_stop("deadline", "the time budget is used up")

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
        request = DeleteRequest(
            db_id=db_id,
            matching="email",
            value=f"erasure-preflight-{secrets.token_hex(8)}@example.com",
        )
        verdict: altcraft.Verdict
        for attempt in range(1, self.job.run.max_attempts + 1):
            verdict = await self._send_once(request)
            if isinstance(verdict, Retry) and verdict.reason == "connect":
                raise Unreachable(
                    f"cannot reach {self.job.api.base_url}: connection failed "
                    f"({verdict.reason}); check api.base_url, DNS, TLS and proxies"
                )
            if not isinstance(verdict, Retry):
                break
            if attempt < self.job.run.max_attempts:
                await anyio.sleep(
                    verdict.after_s if verdict.after_s is not None else full_jitter(attempt)
                )
        else:
            assert isinstance(verdict, Retry)  # every attempt asked for another
            status = f", HTTP {verdict.http_status}" if verdict.http_status is not None else ""
            raise Unreachable(
                f"the preflight to {self.job.api.base_url} got no usable answer in "
                f"{self.job.run.max_attempts} attempts (last: {verdict.reason}{status})"
            )
        self._raise_for_abort(verdict)
        if isinstance(verdict, NotFound):
            self.summary.preflight = "not_found"
            self.log.info("erasure.preflight.passed", error_code=verdict.code)
            return
        if isinstance(verdict, Erased):
            raise PreflightUnexpected(
                "the preflight answered success (error 0) for an address that cannot "
                "exist; the endpoint does not behave like Altcraft's delete"
            )
        assert isinstance(verdict, Rejected)
        raise PreflightUnexpected(
            f"the preflight answer (HTTP {verdict.http_status}, error {verdict.code}) "
            "matched no configured code; if it means 'not found', add it to "
            "[api.codes] not_found"
        )

    def _raise_for_abort(self, verdict: altcraft.Verdict) -> None:
        if not isinstance(verdict, Abort):
            return
        what = f"HTTP {verdict.http_status}" + (
            f", error {verdict.code}" if verdict.code is not None else ""
        )
        if verdict.kind == "token":
            raise TokenRefused(
                f"the service refused the token ({what}): missing, invalid, or "
                "without the delete permission"
            )
        if verdict.kind == "wrong_url":
            raise WrongEndpoint(
                f"{self.job.api.base_url} does not answer like Altcraft ({what}); "
                "check api.base_url"
            )
        raise ServiceUnavailable(f"the service refused the whole run ({what})")

    # ------------------------------------------------------------ sending

    async def _send_once(self, request: DeleteRequest) -> altcraft.Verdict:
        granted = await self.limiter.acquire()
        self.summary.requests += 1
        try:
            answer = await send(self.client, request, self.token, self.job.api.format)
        except (httpx.HTTPError, OSError) as exc:
            verdict = altcraft.classify_exception(exc)
        else:
            verdict = altcraft.classify(answer, self.job.api.codes)
        # The shared pace follows the answers; Retry-After delays only this
        # identifier (the worker waits it out), not every other request.
        self.limiter.observe(time.monotonic() - granted, signal_of(verdict))
        return verdict

    _work_scope: anyio.CancelScope | None = None

    async def _work(self) -> None:
        hopper = _Hopper(low=self.job.run.concurrency)
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
        work = self.plan.work
        for offset in range(0, work.height, batch):
            rows = work.slice(offset, batch).iter_rows(named=True)
            yield [(_item(row), row) for row in rows]

    async def _feed(self, hopper: _Hopper) -> None:
        batch = max(64, self.job.run.concurrency)
        try:
            for chunk in self._items(batch):
                await hopper.wait_for_room()
                if self.stop.is_set():
                    return
                events: list[Event] = []
                for item, row in chunk:
                    events += self._planned(item.key, row)
                    events.append(self._event(Kind.SENT, key=item.key, attempt=1))
                try:
                    await self.writer.commit(events)
                except LedgerWriteError:
                    return
                self._fed += len(chunk)
                hopper.put_many(item for item, _ in chunk)
        finally:
            hopper.close()

    async def _worker(self, hopper: _Hopper) -> None:
        while (item := await hopper.get()) is not None:
            if self.stop.is_set():
                self._withdrawn.append(item)
                continue
            await self._erase(item)

    async def _erase(self, item: WorkItem) -> None:
        max_attempts = self.job.run.max_attempts
        doubt = item.in_doubt
        attempt = 1
        while True:
            if attempt > 1:
                try:
                    await self.writer.commit(
                        [self._event(Kind.SENT, key=item.key, attempt=attempt)]
                    )
                except LedgerWriteError:
                    return
                if self.stop.is_set():
                    self.writer.put([self._event(Kind.WITHDRAWN, key=item.key, attempt=attempt)])
                    return
            verdict = await self._send_once(item.request)
            if isinstance(verdict, Retry):
                doubt = doubt or verdict.maybe_reached
                capped = (
                    verdict.after_s is not None and verdict.after_s > self.job.run.retry_after_cap_s
                )
                if attempt >= max_attempts or capped:
                    self._finish(item, attempt, Outcome.FAILED, doubt, verdict)
                    return
                self.writer.put([self._attempt(item, attempt, verdict)])
                wait = verdict.after_s if verdict.after_s is not None else full_jitter(attempt)
                self.log.debug(
                    "erasure.retry.scheduled",
                    key=item.key,
                    attempt=attempt,
                    reason=verdict.reason,
                    wait_s=round(wait, 3),
                )
                with anyio.move_on_after(wait):
                    await self.stop.wait()
                if self.stop.is_set():
                    return  # left pending; its last request was answered or is flagged
                attempt += 1
                continue
            if isinstance(verdict, Abort):
                self.writer.put([self._attempt(item, attempt, verdict)])
                reason: StopReason = "token" if verdict.kind == "token" else "unavailable"
                try:
                    self._raise_for_abort(verdict)
                except (TokenRefused, ServiceUnavailable) as exc:
                    self.request_stop(reason, str(exc))
                return
            outcome = {
                Erased: Outcome.ERASED,
                NotFound: Outcome.NOT_FOUND,
                Rejected: Outcome.REJECTED,
            }[type(verdict)]
            self._finish(item, attempt, outcome, doubt, verdict)
            return

    def _attempt(self, item: WorkItem, attempt: int, verdict: altcraft.Verdict) -> Event:
        code = getattr(verdict, "code", None)
        return self._event(
            Kind.ATTEMPT,
            key=item.key,
            attempt=attempt,
            in_doubt=int(isinstance(verdict, Retry) and verdict.maybe_reached),
            error_code=code,
            error_text=altcraft.scrub(_text(verdict), item.request.value, item.key),
            http_status=getattr(verdict, "http_status", None),
        )

    def _finish(
        self,
        item: WorkItem,
        attempt: int,
        outcome: Outcome,
        doubt: bool,
        verdict: altcraft.Verdict,
    ) -> None:
        profile_id = verdict.profile_id if isinstance(verdict, Erased) else None
        text = altcraft.scrub(_text(verdict), item.request.value, item.key)
        self.writer.put(
            [
                self._event(
                    Kind.OUTCOME,
                    key=item.key,
                    request_id=rid,
                    attempt=attempt,
                    outcome=outcome.value,
                    in_doubt=int(doubt),
                    profile_id=profile_id,
                    error_code=getattr(verdict, "code", None) if outcome != Outcome.ERASED else 0,
                    error_text=text,
                    http_status=getattr(verdict, "http_status", None),
                )
                for rid in item.request_ids
            ]
        )

    # ------------------------------------------------------------ the end

    async def _record_rest(self) -> None:
        """Withdraw intents that never left; record the plan's unreached pairs.

        Recording the unreached pairs lets the report list them as pending
        (with their deadlines). It is bounded (:data:`RECORD_ON_STOP_MAX`
        keys) so that a clean stop of a huge plan still stops promptly; the
        rest is counted in the run's end as ``unrecorded`` and is planned
        again by the next run.
        """
        events = [self._event(Kind.WITHDRAWN, key=i.key, attempt=1) for i in self._withdrawn]
        self.summary.withdrawn = len(self._withdrawn)
        work = self.plan.work
        end = min(work.height, self._fed + RECORD_ON_STOP_MAX)
        for offset in range(self._fed, end, WRITER_BATCH):
            rows = work.slice(offset, min(WRITER_BATCH, end - offset)).iter_rows(named=True)
            for row in rows:
                events += self._planned(row["key"], row)
            try:
                await self.writer.commit(events)
            except LedgerWriteError:
                return  # the run already stops with 74; the next run plans them again
            events = []
        self.writer.put(events)
        if end < work.height:
            self.summary.unrecorded = work.height - end
            self.log.info("erasure.plan.unrecorded", keys=self.summary.unrecorded)


def _first(group: BaseExceptionGroup[ErasureError]) -> ErasureError:
    """The first error of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _item(row: dict[str, Any]) -> WorkItem:
    request = DeleteRequest(
        db_id=row["db_id"],
        matching=row["matching"],
        value=row["value"],
        value_is_int=bool(row["value_is_int"]),
        field_name=row["field_name"],
        resource_id=row["resource_id"],
    )
    return WorkItem(row["key"], request, row["request_ids"], bool(row["in_doubt"]))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _text(verdict: altcraft.Verdict) -> str | None:
    if isinstance(verdict, Retry):
        return verdict.reason
    return getattr(verdict, "text", None)


def finish_event(run: int, summary: Summary, exit_code: ExitCode) -> Event:
    """The run's last event: its exit code and counts."""
    detail = summary.as_dict() | {"exit_code": int(exit_code)}
    return Event(Kind.RUN_FINISHED, run, detail=json.dumps(detail, sort_keys=True))
