"""The retry decision, pure: what to do after one answer.

::

    decide(verdict, attempt, policy, in_doubt=..., rand=...) -> Finish | Wait | Stop

The worker (:mod:`erasure.run.runner`) and the preflight
(:mod:`erasure.run.preflight`) both ask it, so that an identifier and the
preflight's made-up address meet the same rules:

- a final answer (erased, not found, rejected) finishes with that outcome;
- a transient one (:class:`~erasure.altcraft.Retry`) waits and tries again,
  until ``max_attempts`` requests were sent or the service asks for a pause
  longer than ``retry_after_cap_s``: then the identifier is ``failed`` for
  this run (the next run sends it again);
- a run-wide refusal (:class:`~erasure.altcraft.Abort`) stops the run; so
  does a connection failure at the preflight (refused, DNS, TLS, proxy),
  which proves the service cannot be reached before any real identifier is
  touched. A peer that accepted the connection and then hung up on it (FIN
  or RST at accept, as a proxy does while its upstream restarts) was
  reached: that stays transient, at the preflight too.

The policy is a frozen value the caller injects; :meth:`Backoff.instant` is
its test mode (as stamina's ``set_testing``): the same decisions, no waiting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from erasure.altcraft import Abort, AbortKind, Erased, NotFound, Rejected, Retry, Verdict
from erasure.job import Run
from erasure.ledger import Outcome
from erasure.transport import Stage

__all__ = ["Backoff", "Decision", "Finish", "GaveUp", "Stop", "Wait", "decide"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long and how often to retry one identifier within one run.

    Waits are exponential with full jitter: before request ``attempt + 1`` a
    uniform draw between 0 and ``min(cap_s, base_s * 2 ** (attempt - 1))``
    seconds, which spreads the retries of many workers that failed together.
    A ``Retry-After`` from the service replaces the draw.
    """

    max_attempts: int = 8  # requests per identifier per run, the first included
    retry_after_cap_s: float = 300.0  # seconds: a longer Retry-After fails the identifier
    base_s: float = 0.25  # seconds: the first retry waits up to this long
    cap_s: float = 30.0  # seconds: no jittered wait is longer
    testing: bool = False  # every wait is 0 seconds; every decision is unchanged

    @classmethod
    def for_run(cls, settings: Run) -> Backoff:
        """The job's ``[run]`` limits with the default timing."""
        return cls(max_attempts=settings.max_attempts, retry_after_cap_s=settings.retry_after_cap_s)

    def instant(self) -> Backoff:
        """The same policy in test mode: no wait at all, as stamina's ``set_testing``."""
        return replace(self, testing=True)

    def wait_s(self, attempt: int, retry_after_s: float | None, rand: float) -> float:
        """Seconds to wait after request ``attempt``; ``rand`` is uniform in [0, 1)."""
        if self.testing:
            return 0.0
        if retry_after_s is not None:
            return retry_after_s
        return rand * min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))


class GaveUp(enum.StrEnum):
    """Why a transient failure ended as ``failed`` for this run."""

    # Every one of max_attempts requests met a transient failure.
    ATTEMPTS = "attempts"
    # The service asked for a pause longer than retry_after_cap_s.
    RETRY_AFTER = "retry_after"


@dataclass(frozen=True, slots=True)
class Finish:
    """The identifier is done for this run: record ``outcome``."""

    outcome: Outcome
    in_doubt: bool  # an earlier request of it may have reached the service unanswered
    gave_up: GaveUp | None = None  # set when ``outcome`` is FAILED


@dataclass(frozen=True, slots=True)
class Wait:
    """Send the request again after ``seconds``."""

    seconds: float
    in_doubt: bool


# How a run ends early: a run-wide refusal, or no connection at the preflight.
StopKind: TypeAlias = AbortKind | Literal["unreachable"]


@dataclass(frozen=True, slots=True)
class Stop:
    """No identifier can succeed as things are: the whole run stops."""

    kind: StopKind


Decision: TypeAlias = Finish | Wait | Stop

_FINAL: dict[type[Verdict], Outcome] = {
    Erased: Outcome.ERASED,
    NotFound: Outcome.NOT_FOUND,
    Rejected: Outcome.REJECTED,
}


def decide(
    verdict: Verdict,
    attempt: int,
    policy: Backoff,
    *,
    in_doubt: bool = False,
    rand: float = 0.0,
    preflight: bool = False,
) -> Decision:
    """What to do after request number ``attempt`` (1-based) was judged ``verdict``.

    ``in_doubt`` says whether an earlier request for the same identifier may
    have reached the service; the decision carries it on, raised by this
    verdict when it may have too. ``rand`` (uniform in [0, 1)) is the
    jitter's draw, passed in so that the function stays pure. ``preflight``
    turns a failed connection into :class:`Stop` ("unreachable"): before any
    real identifier, a service that cannot be reached ends the run at once.
    """
    if isinstance(verdict, Abort):
        return Stop(verdict.kind)
    if not isinstance(verdict, Retry):
        return Finish(_FINAL[type(verdict)], in_doubt)
    if preflight and verdict.reason == "connect" and not hung_up(verdict):
        return Stop("unreachable")
    doubt = in_doubt or verdict.maybe_reached
    if verdict.after_s is not None and verdict.after_s > policy.retry_after_cap_s:
        return Finish(Outcome.FAILED, doubt, GaveUp.RETRY_AFTER)
    if attempt >= policy.max_attempts:
        return Finish(Outcome.FAILED, doubt, GaveUp.ATTEMPTS)
    return Wait(policy.wait_s(attempt, verdict.after_s, rand), doubt)


def hung_up(verdict: Retry) -> bool:
    """Whether a connect failure was a hang-up after accept: the host was reached."""
    return verdict.stage is Stage.HUNG_UP
