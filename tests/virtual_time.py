"""A clock that moves only when something sleeps on it: waits that cost no time.

A pacer (:class:`erasure.ratelimit.RateLimiter`) given ``clock`` and
``clock.sleep`` paces exactly as it would on the real clock, in the same
order, without waiting: each sleep moves the clock forward by its length and
only yields to the event loop. The fault matrix runs its runs' pacers on one,
since it tests outcomes; pacing itself is tested in ``tests/test_ratelimit.py``.
"""

from __future__ import annotations

import anyio.lowlevel


class VirtualClock:
    """Monotonic seconds from 0.0, moved forward by :meth:`sleep` alone."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0  # seconds of every sleep so far: what the real clock would have waited

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        step = max(0.0, seconds)
        self.now += step
        self.slept += step
        await anyio.lowlevel.checkpoint()
