"""A request rate ceiling that is never exceeded, and slows down on 429.

Two rules decide when :meth:`RateLimiter.acquire` grants, both over the
actual grant times:

- **The ceiling**, exact: no half-open window ``[t, t + 1 s)`` holds more
  than ``floor(rate_per_s)`` grants (for a ceiling below 1 per second: one
  grant per ``1 / rate_per_s`` seconds). It is enforced with the log of the
  last ``floor(rate_per_s)`` grant times: a grant waits until the oldest of
  them is one second old.
- **The pace**, smooth: grants are spaced ``1 / current_rate`` apart (GCRA,
  the continuously refilling bucket), from the previous grant's actual
  time when the callers fell behind. A grant may come up to
  :data:`BURST_S` early, so that at thousands per second the limiter
  hands out small batches instead of sleeping 0.2 ms per grant (an
  ``asyncio`` sleep is never shorter than about 1 ms); the bucket thus
  holds at most ``BURST_S`` seconds' worth.

Grants are FIFO and serialized: an ``anyio.Lock`` is held while sleeping
(a grant that is due while nobody waits needs neither the lock nor a sleep).
``current_rate`` starts at the ceiling, halves on :meth:`slow_down` (a 429)
down to a floor, and climbs back linearly with :meth:`succeeded`, from the
floor to the ceiling in about :data:`RECOVERY_S` seconds of successes.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["BURST_S", "RECOVERY_S", "RateLimiter"]

BURST_S = 0.005  # seconds: how early a grant may come (the bucket's depth, in time)
RECOVERY_S = 30.0  # seconds of successes from the floor back to the ceiling
HOLD_S = 1.0  # seconds after a slow-down during which further 429s do not slow down more
MAX_PAUSE_S = 60.0  # seconds: the longest pause a Retry-After can impose on everyone
_EPSILON = 1e-9  # seconds: rounding slack so that "one second later" is never 0.999999999


class RateLimiter:
    """Grants at most ``rate_per_s`` requests per second, for anyio tasks.

    ``clock`` returns seconds (monotonic) and ``sleep`` waits that many
    seconds; tests pass a virtual pair.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        burst_s: float = BURST_S,
        floor_per_s: float | None = None,
        recovery_s: float = RECOVERY_S,
    ) -> None:
        if not rate_per_s > 0 or math.isinf(rate_per_s):
            raise ValueError("rate_per_s must be a positive number")
        self._ceiling = float(rate_per_s)
        self._floor = (
            min(self._ceiling, max(self._ceiling / 64, 0.5))
            if floor_per_s is None
            else min(self._ceiling, floor_per_s)
        )
        self._rate = self._ceiling
        self._burst_s = burst_s
        self._step = (self._ceiling - self._floor) / recovery_s  # per second, per second
        self._clock = clock
        self._sleep = sleep
        # the ceiling: at most _n grants in any window of _window seconds
        if self._ceiling >= 1:
            self._n, self._window = math.floor(self._ceiling), 1.0
        else:
            self._n, self._window = 1, 1.0 / self._ceiling
        self._log: deque[float] = deque(maxlen=self._n)
        self._tat = -math.inf  # the theoretical time of the next grant (GCRA)
        self._paused_until = -math.inf
        self._slowed_at = -math.inf
        self._lock = anyio.Lock(fast_acquire=True)

    @property
    def ceiling(self) -> float:
        """The configured ceiling, requests per second."""
        return self._ceiling

    @property
    def current_rate(self) -> float:
        """The pace now, requests per second (the ceiling unless 429s slowed it)."""
        return self._rate

    def _ready_at(self) -> float:
        """The earliest time the next grant may happen, in clock seconds."""
        ready = max(self._paused_until, self._tat - self._burst_s)
        if len(self._log) == self._n:
            ready = max(ready, self._log[0] + self._window + _EPSILON)
        return ready

    async def acquire(self) -> float:
        """Wait for a grant; returns its time (clock seconds). FIFO among waiters.

        Cancelling a waiter grants nothing and lets the next one in. With
        nobody waiting and a grant due, it returns without yielding: the
        lock and the scheduler cost more than the rest of the grant.
        """
        if not self._lock.locked():
            now = self._clock()
            if self._ready_at() <= now:
                return self._grant(now)
        async with self._lock:
            now = self._clock()
            ready = self._ready_at()
            while ready > now:
                await self._sleep(ready - now)
                now = self._clock()
                ready = self._ready_at()  # a slow_down() may have moved it
            return self._grant(now)

    def _grant(self, now: float) -> float:
        self._log.append(now)
        self._tat = max(self._tat, now) + 1.0 / self._rate
        return now

    def slow_down(self, after_s: float | None = None, *, sent_at: float | None = None) -> None:
        """The service answered 429: halve the pace (not below the floor).

        ``sent_at`` (the grant time :meth:`acquire` returned for the request
        that was refused) lets one slow-down per round count: a 429 for a
        request granted before the last slow-down is ignored. Without it, 429s
        within :data:`HOLD_S` seconds of the last slow-down are ignored.
        ``after_s``, the answer's ``Retry-After``, pauses every grant for that
        long (at most :data:`MAX_PAUSE_S` seconds).
        """
        now = self._clock()
        if after_s is not None and after_s > 0:
            self._paused_until = max(self._paused_until, now + min(after_s, MAX_PAUSE_S))
        stale = sent_at < self._slowed_at if sent_at is not None else now - self._slowed_at < HOLD_S
        if stale:
            return
        self._slowed_at = now
        self._set_rate(self._rate / 2)

    def succeeded(self) -> None:
        """An answer that was not a 429: creep back toward the ceiling.

        Each call adds ``step / current_rate``, so that at the pace of the
        successes the rate grows linearly, floor to ceiling in
        :data:`RECOVERY_S` seconds.
        """
        if self._rate < self._ceiling:
            self._set_rate(self._rate + self._step / self._rate)

    def _set_rate(self, rate: float) -> None:
        old = self._rate
        self._rate = min(self._ceiling, max(self._floor, rate))
        if self._rate < old:
            # the next grant keeps its distance from the last one at the new pace
            self._tat += 1.0 / self._rate - 1.0 / old
