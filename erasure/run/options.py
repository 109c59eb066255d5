"""How to run, beyond the job file: what the command line and the tests give a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from erasure.ledger import Event
    from erasure.ratelimit import RateLimiter
    from erasure.run.retry import Backoff

__all__ = ["RECORD_ON_STOP_MAX", "Options"]

RECORD_ON_STOP_MAX = 50_000  # unreached keys recorded as planned on a stop, at most


@dataclass(frozen=True, slots=True)
class Options:
    """How to run, beyond the job file."""

    deadline: float | None = None  # time.monotonic() at which to stop cleanly, seconds
    progress: bool = False  # draw a tqdm bar on stderr
    install_signal_handlers: bool = True
    backoff: Backoff | None = None  # the retry policy; None: Backoff.for_run(job.run)
    record_on_stop_max: int = RECORD_ON_STOP_MAX  # unreached keys recorded on a stop, at most
    command: str = "run"  # the command whose run this is; another is named in run_started
    first_events: tuple[Event, ...] = ()  # committed with run_started (sweep: reappeared)
    heartbeat_s: float = 10.0  # a progress log line at least this often, seconds
    # Makes the run's pacer; None: the job's [run] rate on the real clock. The
    # fault matrix injects one on a virtual clock: it tests outcomes, and
    # pacing is tested on its own (tests/test_ratelimit.py).
    pacer: Callable[[], RateLimiter] | None = None
    # The HTTP transport; None: the production one (client.make_client). Tests
    # inject an httpx.MockTransport here (through app.run too), the seam
    # production uses; the one way to give a run a transport.
    transport: httpx.AsyncBaseTransport | None = None
    # Holds and cancellations given while the run runs (erasure.holdback.Live): the
    # run appends what was queued and stops sending what they name. None: none.
    decisions: Any = None
