"""How the sandbox fails: seeded dice, a rate limit, and the faulty answers.

A fault is decided when a delete request arrives, before any waiting, so a
seeded run of sequential requests meets the same faults every time. Faulty
answers imitate what stands in front of a real service:

- 429 (``--fail-429`` and ``--rate-limit``): ``text/plain`` "Too Many
  Requests" with ``Retry-After`` (seconds or an HTTP date), no Altcraft body;
- 500: an Altcraft-shaped body ``{"error": 500, "error_text": "Internal
  server error"}`` (the service failed);
- 502, 503: a proxy's ``text/html`` page, no Altcraft body;
- malformed: HTTP 200 and the first half of a real answer;
- hang: no answer for ``hang_s`` seconds (or until the sandbox stops), then
  the connection is closed; drop: the connection is closed at once;
- the connection faults (:class:`ConnectionFault`), played by ``front.py``.
"""

from __future__ import annotations

import enum
import math
import random
import time
from email.utils import formatdate

from erasure.sandbox.settings import Settings


class Fault(enum.Enum):
    """What happens to one delete request instead of (or after) the delete."""

    RATE_LIMITED = "rate_limited"  # 429 from --rate-limit
    HANG = "hang"  # no answer
    DROP = "drop"  # connection closed, no answer
    FAIL_429 = "429"  # 429 from --fail-429
    FAIL_5XX = "5xx"  # one of fail_5xx_codes
    MALFORMED = "malformed"  # 200 with a truncated body


class ConnectionFault(enum.Enum):
    """A fault played below HTTP by the raw front (front.py); values are setting names."""

    HANGUP_FIN = "hangup_fin"  # closed at accept, nothing read
    HANGUP_RST = "hangup_rst"  # reset at accept
    EARLY_503 = "early_503"  # 503 after the head, body unread, then closed
    IDLE_CLOSE = "idle_close"  # an idle keep-alive connection closed
    OVERSIZE = "oversize"  # the real answer padded to oversize_bytes
    GZIP_BOMB = "gzip_bomb"  # the real answer behind gzip_bomb_bytes of gzipped spaces
    TRICKLE = "trickle"  # the real answer one byte at a time
    OBS_FOLD = "obs_fold"  # the real answer with folded header lines
    BARE_LF = "bare_lf"  # the real answer with LF-only lines in its head


# The odd answers, in the order they are drawn; the first hit wins.
ODD_ANSWERS = (
    ConnectionFault.OVERSIZE,
    ConnectionFault.GZIP_BOMB,
    ConnectionFault.TRICKLE,
    ConnectionFault.OBS_FOLD,
    ConnectionFault.BARE_LF,
)


class Dice:
    """Seeded draws; a probability of 0 or 1 draws nothing."""

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)

    def hit(self, probability: float) -> bool:
        if probability <= 0:
            return False
        return probability >= 1 or self.rng.random() < probability

    def latency_s(self, settings: Settings) -> float:
        """The added latency of one request, seconds: uniform in mean +- jitter, >= 0."""
        jitter = settings.latency_jitter_ms
        spread = self.rng.uniform(-jitter, jitter) if jitter else 0.0
        return max(0.0, settings.latency_ms + spread) / 1000

    def before(self, settings: Settings) -> Fault | None:
        """The fault that replaces the delete, if any (rate limit excluded)."""
        for fault, probability in (
            (Fault.HANG, settings.hang),
            (Fault.DROP, settings.drop),
            (Fault.FAIL_429, settings.fail_429),
            (Fault.FAIL_5XX, settings.fail_5xx),
            (Fault.MALFORMED, settings.malformed),
        ):
            if self.hit(probability):
                return fault
        return None

    def after(self, settings: Settings) -> Fault | None:
        """The fault that follows a delete, if any."""
        for fault, probability in (
            (Fault.HANG, settings.hang_after_delete),
            (Fault.DROP, settings.drop_after_delete),
            (Fault.MALFORMED, settings.malformed_after_delete),
        ):
            if self.hit(probability):
                return fault
        return None

    def hangup(self, settings: Settings) -> ConnectionFault | None:
        """Whether a new connection is hung up at accept, and how."""
        if self.hit(settings.hangup_fin):
            return ConnectionFault.HANGUP_FIN
        if self.hit(settings.hangup_rst):
            return ConnectionFault.HANGUP_RST
        return None

    def odd_answer(self, settings: Settings) -> ConnectionFault | None:
        """The shape a delete's answer goes out in, if odd."""
        for fault in ODD_ANSWERS:
            if self.hit(getattr(settings, fault.value)):
                return fault
        return None

    def status_5xx(self, settings: Settings) -> int:
        return self.rng.choice(settings.fail_5xx_codes)


class TokenBucket:
    """A rate limit: ``rate`` requests per second, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate  # per second
        self.burst = max(1.0, burst)  # requests
        self.tokens = self.burst
        self.updated = time.monotonic()

    def retune(self, rate: float, burst: float) -> None:
        """A new rate and size, keeping the tokens saved so far (at most the new size).

        A limit lowered mid-run then bites at once, as a real service's would,
        instead of granting a fresh burst.
        """
        self.take_refill(time.monotonic())
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = min(self.tokens, self.burst)

    def take_refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> float:
        """0 when a request may pass now; else how long until it could, seconds."""
        self.take_refill(now)
        if self.tokens >= 1 - 1e-9:  # a request exactly on time passes despite rounding
            self.tokens = max(0.0, self.tokens - 1)
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1 - self.tokens) / self.rate


def retry_after(settings: Settings, wait_s: float | None = None) -> list[tuple[bytes, bytes]]:
    """The Retry-After header: ``wait_s`` or the configured seconds, rounded up."""
    seconds = settings.retry_after if wait_s is None else wait_s
    if seconds is None:
        return []
    whole = math.ceil(seconds) if math.isfinite(seconds) else 3600
    if settings.retry_after_http_date:
        value = formatdate(time.time() + whole, usegmt=True)
    else:
        value = str(whole)
    return [(b"retry-after", value.encode())]


TOO_MANY = b"Too Many Requests\n"
PROXY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n",
    503: b"<html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><center><h1>503 Service Temporarily Unavailable</h1></center>"
    b"<hr><center>nginx</center></body></html>\n",
}
INTERNAL_ERROR_TEXT = "Internal server error"


def truncated(answer: bytes) -> bytes:
    """The first half of an answer: what a proxy cut short looks like."""
    return answer[: max(1, len(answer) // 2)]
