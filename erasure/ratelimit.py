"""Request pacing: an exact ceiling, a smooth pace, and a controller that sets the pace.

:meth:`RateLimiter.acquire` grants by two rules, both over the actual grant
times:

- **The ceiling**, exact: no half-open window ``[t, t + 1 s)`` holds more
  than ``floor(ceiling)`` grants (for a ceiling below 1 per second: one
  grant per ``1 / ceiling`` seconds). It is enforced with the log of the
  last ``floor(ceiling)`` grant times: a grant waits until the oldest of
  them is one second old. No controller can lift it.
- **The pace**, smooth: grants are spaced ``1 / current_rate`` apart (GCRA,
  the continuously refilling bucket), from the previous grant's actual
  time when the callers fell behind. A grant may come up to
  :data:`BURST_S` early, so that at thousands per second the limiter
  hands out small batches instead of sleeping 0.2 ms per grant (an
  ``asyncio`` sleep is never shorter than about 1 ms); the bucket thus
  holds at most ``BURST_S`` seconds' worth.

Grants are FIFO and serialized: an ``anyio.Lock`` is held while sleeping
(a grant that is due while nobody waits needs neither the lock nor a sleep).

The caller reports every answer with :meth:`RateLimiter.observe` (its
latency and a :class:`Signal`), and a controller turns those reports into
``current_rate``. Both controllers are pure (time is passed in), so that a
simulation tests them deterministically:

- :class:`Recovering`, for a number ``rate_per_s``: starts at the ceiling,
  halves on a 429 (once per round trip) down to a floor, and climbs back
  linearly, floor to ceiling in :data:`RECOVERY_S` seconds of successes.
- :class:`Adaptive`, for ``rate_per_s = "auto"``: finds the service's limit
  below ``max_rate_per_s`` (AIMD with a slow start, as TCP does, plus a
  latency gradient, as Netflix's concurrency-limits): it starts low, grows
  exponentially until the first sign of a limit, then linearly, cuts
  multiplicatively on 429, 5xx, timeouts or rising latency, and after
  :data:`RESTART_S` seconds without a sign grows exponentially again, so
  that it follows a limit that moves up as well as down.

(About 440 lines, over the house's 400: the controllers exist only to feed
the limiter, and split apart each would be read with this one open.)
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from erasure.altcraft import Abort, Retry, RetryReason, Verdict

__all__ = [
    "BURST_S",
    "RECOVERY_S",
    "RESTART_S",
    "Adaptive",
    "Cause",
    "Controller",
    "Phase",
    "RateLimiter",
    "Recovering",
    "Signal",
    "signal_of",
]

BURST_S = 0.005  # seconds: how early a grant may come (the bucket's depth, in time)
RECOVERY_S = 30.0  # seconds of successes from the floor back to the ceiling (Recovering)
_EPSILON = 1e-9  # seconds: rounding slack so that "one second later" is never 0.999999999

# Adaptive's tuning. Chosen against a simulated service with a hidden limit
# (tests/test_ratelimit.py) and a real loopback one (bench/autorate.py).
START_PER_S = 5.0  # requests per second to begin with: low enough for any real service
SLOW_START_GAIN = 0.5  # per answer, requests per second: x1.65 per second while all are clean
INCREASE_PER_S = 0.04  # per second, of the rate at the last cut: back to it in 5 s after a 429
RESTART_S = 10.0  # seconds without a sign of a limit: it may have risen, grow exponentially again
LATENCY_HOLD = 1.5  # recent latency above this times the long-run one: stop growing
LATENCY_CUT = 2.0  # recent latency above this times the long-run one: the service queues, cut
LATENCY_MIN_SAMPLES = 20  # answers before latency is judged at all
# seconds between two latency cuts at least: a latency that rose for everyone
# (a busy client, a slower service) costs a few cuts while the long-run
# latency catches up, not one per round trip
LATENCY_SPACING_S = 1.0
SHORT_WEIGHT = 0.05  # EWMA weight of one answer in the recent latency (about 40 answers)
LONG_WEIGHT = 0.002  # EWMA weight of one answer in the long-run latency (about 1,000 answers)
USED_HEADROOM = (
    2.0  # the pace grows only while it is at most this times the answers of the last second
)


class Signal(enum.Enum):
    """What one answer says about the service's load; the caller classifies it."""

    OK = "ok"  # an answer that is not about load: 2xx, or a refusal of that one identifier
    THROTTLED = "throttled"  # HTTP 429: above the service's limit
    SERVER_ERROR = "server_error"  # HTTP 5xx: the service (or a proxy before it) struggles
    TIMEOUT = "timeout"  # no answer within timeout_s
    OTHER = "other"  # says nothing about load: refused, reset, an unforeseen error


# Retry reasons that say the service is slow to answer (or to accept a connection)
_TIMEOUTS: frozenset[RetryReason] = frozenset({"connect_timeout", "write_timeout", "read_timeout"})


def signal_of(verdict: Verdict) -> Signal:
    """What a verdict says about the service's load.

    Erased, not found and rejected are answers to that one identifier:
    ``OK``. A retry is judged by its reason: HTTP 429 is ``THROTTLED``,
    HTTP 5xx ``SERVER_ERROR``, a connect, write or read timeout ``TIMEOUT``;
    anything else (refused, reset, a pool timeout on our side, an answer
    without a body) and an abort say nothing about load: ``OTHER``.
    """
    if isinstance(verdict, Abort):
        return Signal.OTHER
    if not isinstance(verdict, Retry):
        return Signal.OK
    if verdict.reason == "http_429":
        return Signal.THROTTLED
    if verdict.reason == "http_5xx":
        return Signal.SERVER_ERROR
    if verdict.reason in _TIMEOUTS:
        return Signal.TIMEOUT
    return Signal.OTHER


class Cause(enum.Enum):
    """Why :class:`Adaptive` cut its rate."""

    THROTTLED = "throttled"  # a 429
    SERVER_ERROR = "server_error"  # a 5xx
    TIMEOUT = "timeout"  # no answer in time
    LATENCY = "latency"  # recent latency well above the long-run one


class Phase(enum.Enum):
    """Where :class:`Adaptive` is in its search."""

    SLOW_START = "slow_start"  # no limit met (lately): grow exponentially
    AVOIDANCE = "avoidance"  # a limit met lately: grow linearly, cut multiplicatively


# The multiplicative cut per signal. A 429 says "just above the limit", so a
# mild cut; a 5xx or a timeout says the service is in trouble, so a deeper one.
CUTS: dict[Cause, float] = {
    Cause.THROTTLED: 0.8,
    Cause.SERVER_ERROR: 0.7,
    Cause.TIMEOUT: 0.5,
    Cause.LATENCY: 0.9,  # gentle: repeated each round trip while the latency stays up
}
_CAUSES: dict[Signal, Cause] = {
    Signal.THROTTLED: Cause.THROTTLED,
    Signal.SERVER_ERROR: Cause.SERVER_ERROR,
    Signal.TIMEOUT: Cause.TIMEOUT,
}


class Controller(Protocol):
    """Turns answers into a pace. ``now`` and ``latency_s`` are seconds on the limiter's clock."""

    @property
    def rate(self) -> float:
        """The pace now, requests per second."""
        ...

    def observe(self, now: float, latency_s: float, signal: Signal) -> None:
        """One answer, ``latency_s`` seconds after its grant, arrived at ``now``."""
        ...


class Recovering:
    """The pace under a fixed ceiling: halve on 429, climb back linearly.

    A 429 halves the rate (not below ``floor_per_s``) once per round trip: a
    429 for a request granted before the last cut is already accounted for.
    Each ``OK`` adds ``step / rate``, so that at the pace of the answers the
    rate grows linearly, floor to ceiling in ``recovery_s`` seconds. Other
    signals leave the rate as it is.
    """

    def __init__(
        self,
        ceiling_per_s: float,
        *,
        floor_per_s: float | None = None,
        recovery_s: float = RECOVERY_S,
    ) -> None:
        self._ceiling = ceiling_per_s
        self._floor = (
            min(ceiling_per_s, max(ceiling_per_s / 64, 0.5))
            if floor_per_s is None
            else min(ceiling_per_s, floor_per_s)
        )
        self._step = (ceiling_per_s - self._floor) / recovery_s  # per second, per second
        self._rate = ceiling_per_s
        self._cut_at = -math.inf

    @property
    def rate(self) -> float:
        """The pace now, requests per second."""
        return self._rate

    def observe(self, now: float, latency_s: float, signal: Signal) -> None:
        """One answer; see the class docstring."""
        if signal is Signal.THROTTLED:
            if now - latency_s < self._cut_at:
                return
            self._cut_at = now
            self._rate = max(self._floor, self._rate / 2)
        elif signal is Signal.OK and self._rate < self._ceiling:
            self._rate = min(self._ceiling, self._rate + self._step / self._rate)


class Adaptive:
    """The pace that finds the service's limit, never above ``max_per_s``.

    Growth is paid for by answers, not by time: each clean, fast answer adds
    :data:`SLOW_START_GAIN` (slow start, so that the rate grows by
    ``exp(gain)`` per second while every request is answered) or
    ``slope / rate`` (avoidance: ``slope`` is :data:`INCREASE_PER_S` of the
    rate at the last cut, per second), and only while the pace is at most
    :data:`USED_HEADROOM` times the answers of the last second: a caller that
    does not use the pace (too few workers, too little work) does not inflate
    it into a burst for the day the service answers faster.

    A 429, 5xx or timeout cuts the rate by its factor in :data:`CUTS`; recent
    latency (an EWMA over about 40 answers) above :data:`LATENCY_CUT` times the
    long-run latency (about 1,000 answers) cuts by ``CUTS[Cause.LATENCY]``
    (at most once per :data:`LATENCY_SPACING_S`), and above
    :data:`LATENCY_HOLD` it stops the growth. One cut per round trip: a
    signal for a request granted before the last cut was caused by the old
    rate and is already accounted for. ``cuts`` counts the cuts by cause.
    """

    def __init__(
        self,
        max_per_s: float,
        *,
        start_per_s: float = START_PER_S,
        floor_per_s: float = 1.0,
    ) -> None:
        if not max_per_s > 0 or math.isinf(max_per_s):
            raise ValueError("max_per_s must be a positive number")
        self._max = max_per_s
        self._floor = min(max_per_s, floor_per_s)
        self._rate = min(max_per_s, max(self._floor, start_per_s))
        self._phase = Phase.SLOW_START
        self._cut_at = -math.inf  # clock seconds of the last cut
        self._latency_cut_at = -math.inf  # clock seconds of the last cut for latency
        self._slope = 0.0  # requests per second, per second, in avoidance
        self._short = _Ewma(SHORT_WEIGHT)
        self._long = _Ewma(LONG_WEIGHT)
        self._answers: deque[float] = deque()  # clock seconds of the last second's answers
        self.cuts: dict[Cause, int] = dict.fromkeys(Cause, 0)  # how many, by cause: telemetry

    @property
    def rate(self) -> float:
        """The pace now, requests per second."""
        return self._rate

    @property
    def phase(self) -> Phase:
        """Slow start or avoidance."""
        return self._phase

    def observe(self, now: float, latency_s: float, signal: Signal) -> None:
        """One answer; see the class docstring."""
        fresh = now - latency_s >= self._cut_at  # granted after the last cut
        if signal is not Signal.OTHER:
            self._answers.append(now)
            while self._answers[0] <= now - 1.0:
                self._answers.popleft()
        if signal is Signal.OK:
            self._short.add(latency_s)
            self._long.add(latency_s)
            ratio = self._latency_ratio()
            if ratio > LATENCY_CUT:
                if fresh and now - self._latency_cut_at >= LATENCY_SPACING_S:
                    self._latency_cut_at = now
                    self._cut(now, Cause.LATENCY)
            elif ratio <= LATENCY_HOLD:
                self._grow(now)
        elif signal in _CAUSES and fresh:
            self._cut(now, _CAUSES[signal])

    def _latency_ratio(self) -> float:
        """Recent latency over long-run latency; 1.0 until there are enough answers."""
        if self._long.count < LATENCY_MIN_SAMPLES or self._long.value <= 0:
            return 1.0
        return self._short.value / self._long.value

    def _grow(self, now: float) -> None:
        if self._rate > USED_HEADROOM * len(self._answers):
            return  # the pace is not what limits the caller: growing it proves nothing
        if self._phase is Phase.AVOIDANCE and now - self._cut_at >= RESTART_S:
            self._phase = Phase.SLOW_START  # no limit met for a while: it may have risen
        if self._phase is Phase.SLOW_START:
            self._rate += SLOW_START_GAIN
        else:
            self._rate += self._slope / self._rate
        self._rate = min(self._max, self._rate)

    def _cut(self, now: float, cause: Cause) -> None:
        self.cuts[cause] += 1
        self._slope = max(1.0, INCREASE_PER_S * self._rate)
        self._rate = max(self._floor, self._rate * CUTS[cause])
        self._cut_at = now
        self._phase = Phase.AVOIDANCE


class _Ewma:
    """An exponentially weighted mean, debiased so that its first values are plain means."""

    def __init__(self, weight: float) -> None:
        self._weight = weight
        self._raw = 0.0
        self._mass = 0.0  # 1 - (1 - weight) ** count: what the zero start leaves out
        self.count = 0

    def add(self, x: float) -> None:
        self._raw += self._weight * (x - self._raw)
        self._mass += self._weight * (1.0 - self._mass)
        self.count += 1

    @property
    def value(self) -> float:
        return self._raw / self._mass if self._mass else 0.0


class RateLimiter:
    """Grants at most ``ceiling`` requests per second, at the pace its controller sets.

    ``RateLimiter(20)`` is a fixed ceiling (:class:`Recovering`);
    :meth:`auto` finds the service's limit below one (:class:`Adaptive`).
    ``clock`` returns seconds (monotonic) and ``sleep`` waits that many
    seconds; tests pass a virtual pair.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        controller: Controller | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        burst_s: float = BURST_S,
    ) -> None:
        if not rate_per_s > 0 or math.isinf(rate_per_s):
            raise ValueError("rate_per_s must be a positive number")
        self._ceiling = float(rate_per_s)
        self._controller = controller if controller is not None else Recovering(self._ceiling)
        self._rate = min(self._ceiling, self._controller.rate)
        self._burst_s = burst_s
        self._clock = clock
        self._sleep = sleep
        # the ceiling: at most _n grants in any window of _window seconds
        if self._ceiling >= 1:
            self._n, self._window = math.floor(self._ceiling), 1.0
        else:
            self._n, self._window = 1, 1.0 / self._ceiling
        self._log: deque[float] = deque(maxlen=self._n)
        self._tat = -math.inf  # the theoretical time of the next grant (GCRA)
        self._lock = anyio.Lock(fast_acquire=True)

    @classmethod
    def auto(
        cls,
        max_rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        burst_s: float = BURST_S,
    ) -> RateLimiter:
        """A limiter that finds the service's limit, never above ``max_rate_per_s`` per second."""
        return cls(
            max_rate_per_s,
            controller=Adaptive(max_rate_per_s),
            clock=clock,
            sleep=sleep,
            burst_s=burst_s,
        )

    def now(self) -> float:
        """The limiter's clock now, seconds: what :meth:`observe`'s latency is measured on."""
        return self._clock()

    @property
    def ceiling(self) -> float:
        """The ceiling never exceeded, requests per second."""
        return self._ceiling

    @property
    def current_rate(self) -> float:
        """The pace now, requests per second (at most the ceiling)."""
        return self._rate

    @property
    def controller(self) -> Controller:
        """What sets the pace."""
        return self._controller

    def _ready_at(self) -> float:
        """The earliest time the next grant may happen, in clock seconds."""
        ready = self._tat - self._burst_s
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
                ready = self._ready_at()  # an observe() may have moved it
            return self._grant(now)

    def _grant(self, now: float) -> float:
        self._log.append(now)
        self._tat = max(self._tat, now) + 1.0 / self._rate
        return now

    def observe(self, latency_s: float, signal: Signal) -> None:
        """An answer arrived ``latency_s`` seconds after its grant (acquire's return).

        Call it once per request that got a grant, with the signal its
        answer gives; the controller may change the pace.
        """
        self._controller.observe(self._clock(), latency_s, signal)
        old = self._rate
        self._rate = min(self._ceiling, self._controller.rate)
        if self._rate < old:
            # the next grant keeps its distance from the last one at the new pace
            self._tat += 1.0 / self._rate - 1.0 / old
