"""The ledger's writer: answers share commits, an intent never waits, nothing is left behind."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest

from erasure.errors import LedgerWriteError
from erasure.ledger import Event, Kind
from erasure.run.writer import Writer

pytestmark = pytest.mark.anyio

LONG = 3600.0  # a linger no test may ever wait out


class Recorder:
    """An appender that keeps each batch it is given (the real Ledger is tested elsewhere)."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Event]] = []
        self.fail = fail

    def append(self, events: Sequence[Event]) -> None:
        if self.fail:
            raise LedgerWriteError("the disk is full")
        self.batches.append(list(events))


def _answer(i: int) -> Event:
    return Event(Kind.OUTCOME, 1, key=f"k{i}", attempt=1, outcome="erased")  # type: ignore[arg-type]


def _intent(i: int) -> Event:
    return Event(Kind.SENT, 1, key=f"k{i}", attempt=1)


async def test_answers_put_together_share_one_commit() -> None:
    recorder = Recorder()
    committed: list[int] = []
    done = anyio.Event()

    def on_commit(events: Sequence[Event]) -> None:
        committed.append(len(events))
        done.set()

    writer = Writer(recorder, on_commit, linger_s=0.05)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        for i in range(5):
            writer.put([_answer(i)])
            await anyio.lowlevel.checkpoint()  # the writer takes the first one and lingers
        with anyio.fail_after(5):
            await done.wait()
        await writer.close()
    assert [[e.key for e in b] for b in recorder.batches] == [[f"k{i}" for i in range(5)]]
    assert committed == [5]


async def test_an_intent_never_waits_for_the_linger_and_takes_the_answers_with_it() -> None:
    recorder = Recorder()
    writer = Writer(recorder, lambda events: None, linger_s=LONG)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        writer.put([_answer(1)])
        await anyio.lowlevel.checkpoint()  # the answer lingers
        with anyio.fail_after(5):
            await writer.commit([_intent(2)])  # durable on return, long before LONG
        assert [[e.key for e in b] for b in recorder.batches] == [["k1", "k2"]]
        await writer.close()


async def test_closing_commits_what_lingers_at_once() -> None:
    recorder = Recorder()
    writer = Writer(recorder, lambda events: None, linger_s=LONG)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            writer.put([_answer(1)])
            await anyio.lowlevel.checkpoint()
            writer.put([_answer(2)])
            await writer.close()
    assert [e.key for b in recorder.batches for e in b] == ["k1", "k2"]


async def test_a_failed_commit_is_raised_to_the_waiter_and_kept() -> None:
    errors: list[LedgerWriteError] = []
    writer = Writer(Recorder(fail=True), lambda events: None, linger_s=LONG)
    writer.on_error = errors.append
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            with pytest.raises(LedgerWriteError, match="disk is full"):
                await writer.commit([_intent(1)])
            with pytest.raises(LedgerWriteError):  # and every commit after it
                await writer.commit([_intent(2)])
            await writer.close()
    assert len(errors) == 1
