"""The rate ceiling: never exceeded in any one-second window; slows on 429, creeps back."""

from __future__ import annotations

import itertools
import math
import time

import anyio
import pytest
from anyio.lowlevel import checkpoint

from erasure import ratelimit
from erasure.ratelimit import RateLimiter


class VirtualTime:
    """A clock that moves only when the limiter sleeps: hours of grants in milliseconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await checkpoint()


def worst_window(times: list[float], window: float = 1.0) -> int:
    """The most grants in any half-open window [t, t + window)."""
    times = sorted(times)
    worst, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


async def grant_all(limiter: RateLimiter, total: int, tasks: int = 64) -> list[float]:
    """``tasks`` workers take ``total`` grants between them; the grant times, in order."""
    times: list[float] = []
    left = iter(range(total))

    async def worker() -> None:
        for _ in left:
            times.append(await limiter.acquire())
            await checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return times


# ---------------------------------------------------------------- the ceiling


@pytest.mark.anyio
@pytest.mark.parametrize("rate", [0.5, 1, 3, 20, 20.5, 333.3, 5000])
async def test_no_window_exceeds_the_ceiling(rate: float) -> None:
    vt = VirtualTime()
    limiter = RateLimiter(rate, clock=vt.clock, sleep=vt.sleep)
    total = max(8, int(rate * 4))
    times = await grant_all(limiter, total)
    assert len(times) == total
    assert times == sorted(times)  # serialized, in order
    if rate >= 1:
        assert worst_window(times) <= rate
    else:
        assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / rate - 1e-9
    # and it is a ceiling, not a crawl: the pace is the rate (virtual time, no sleeps)
    span = times[-1] - times[0]
    assert (total - 1) / span == pytest.approx(min(rate, math.floor(rate) or rate), rel=0.05)


@pytest.mark.anyio
async def test_the_bucket_holds_a_few_milliseconds_only() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(5000, clock=vt.clock, sleep=vt.sleep)
    times = await grant_all(limiter, 200)
    at_once = sum(1 for t in times if t == times[0])
    assert at_once <= 1 + 5000 * ratelimit.BURST_S
    # at 20/s, no burst at all
    vt = VirtualTime()
    limiter = RateLimiter(20, clock=vt.clock, sleep=vt.sleep)
    times = await grant_all(limiter, 10)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / 20 - ratelimit.BURST_S - 1e-9


@pytest.mark.anyio
@pytest.mark.parametrize(("rate", "total"), [(200, 300), (3000, 4500)])
async def test_real_clock_ceiling(rate: float, total: int) -> None:
    """With the real clock and sleeps: the grant times keep the ceiling exactly, and the
    times the callers see (after the grant) within 2 %."""
    limiter = RateLimiter(rate)
    seen: list[float] = []
    granted: list[float] = []
    left = iter(range(total))

    async def worker() -> None:
        for _ in left:
            granted.append(await limiter.acquire())
            seen.append(time.monotonic())
            await checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(64):
            tg.start_soon(worker)
    assert worst_window(granted) <= rate
    assert worst_window(seen) <= rate * 1.02


@pytest.mark.anyio
async def test_grants_are_fifo_and_cancelling_a_waiter_grants_nothing() -> None:
    limiter = RateLimiter(10, burst_s=0)  # real time: 0.1 s between grants, 0.6 s in all
    order: list[int] = []
    await limiter.acquire()  # the next grant must wait 0.1 s

    async def take(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as doomed:
            tg.start_soon(take, 0)
            await anyio.wait_all_tasks_blocked()
            for i in range(1, 5):
                tg.start_soon(take, i)
                await anyio.wait_all_tasks_blocked()
        scope = anyio.CancelScope()

        async def cancelled_waiter() -> None:
            with scope:
                await limiter.acquire()
                order.append(-1)

        tg.start_soon(cancelled_waiter)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        tg.start_soon(take, 5)
    assert not doomed.cancel_called
    assert order == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("rate", [0, -1, math.nan, math.inf])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate)


# ---------------------------------------------------------------- slowing down


def test_slow_down_halves_once_per_round_and_stops_at_the_floor() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(100, clock=vt.clock, sleep=vt.sleep)
    limiter.slow_down()
    assert limiter.current_rate == 50
    limiter.slow_down()  # the same storm, within HOLD_S: no further cut
    assert limiter.current_rate == 50
    vt.now += ratelimit.HOLD_S
    limiter.slow_down()
    assert limiter.current_rate == 25
    for _ in range(20):
        vt.now += ratelimit.HOLD_S
        limiter.slow_down()
    assert limiter.current_rate == pytest.approx(max(100 / 64, 0.5))
    assert limiter.ceiling == 100


def test_slow_down_by_send_time() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(100, clock=vt.clock, sleep=vt.sleep)
    sent_before = vt.now - 0.5
    limiter.slow_down(sent_at=sent_before)
    assert limiter.current_rate == 50
    # more 429s for requests sent before that cut: already accounted for
    limiter.slow_down(sent_at=sent_before)
    assert limiter.current_rate == 50
    # a 429 for a request sent after the cut: cut again, even within HOLD_S
    vt.now += 0.01
    limiter.slow_down(sent_at=vt.now)
    assert limiter.current_rate == 25


@pytest.mark.anyio
async def test_slower_pace_after_slow_down() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(100, clock=vt.clock, sleep=vt.sleep)
    await grant_all(limiter, 50)
    limiter.slow_down()
    times = await grant_all(limiter, 51)
    assert 50 / (times[-1] - times[0]) == pytest.approx(50, rel=0.05)


@pytest.mark.anyio
async def test_retry_after_pauses_every_grant() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(100, clock=vt.clock, sleep=vt.sleep)
    await limiter.acquire()
    limiter.slow_down(after_s=5)
    paused_at = vt.now
    assert await limiter.acquire() >= paused_at + 5
    limiter.slow_down(after_s=10_000)  # capped: one identifier's long Retry-After
    paused_at = vt.now
    assert await limiter.acquire() == pytest.approx(paused_at + ratelimit.MAX_PAUSE_S)


@pytest.mark.anyio
async def test_successes_creep_back_to_the_ceiling() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(64, clock=vt.clock, sleep=vt.sleep)
    for _ in range(10):
        vt.now += ratelimit.HOLD_S
        limiter.slow_down()
    assert limiter.current_rate == 1.0
    start = vt.now
    rates = []
    while limiter.current_rate < 64:
        await limiter.acquire()
        limiter.succeeded()
        rates.append(limiter.current_rate)
    assert rates == sorted(rates)  # never down without a 429
    # linear in time: floor to ceiling in about RECOVERY_S seconds of successes
    assert vt.now - start == pytest.approx(ratelimit.RECOVERY_S, rel=0.15)
    limiter.succeeded()
    assert limiter.current_rate == 64  # never above the ceiling


@pytest.mark.anyio
async def test_the_ceiling_holds_through_a_429_storm_and_recovery() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(50, clock=vt.clock, sleep=vt.sleep)
    times: list[float] = []
    for i in range(2000):
        times.append(await limiter.acquire())
        if i % 7 == 0 and i < 600:
            limiter.slow_down()
        else:
            limiter.succeeded()
    assert worst_window(times) <= 50
    assert limiter.current_rate == 50
