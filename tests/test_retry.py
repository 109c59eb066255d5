"""The retry decision as a table: verdict, attempt and policy in; finish, wait or stop out."""

from __future__ import annotations

import pytest

from erasure.altcraft import Abort, Erased, NotFound, Rejected, Retry, Verdict
from erasure.job import Run
from erasure.ledger import Outcome
from erasure.run import Backoff, Decision, Finish, GaveUp, Stop, Wait, decide
from erasure.transport import Stage

POLICY = Backoff(max_attempts=3, retry_after_cap_s=60.0, base_s=1.0, cap_s=3.0)


def _retry(
    reason: str = "http_5xx", after_s: float | None = None, *, reached: bool = False
) -> Retry:
    return Retry(reason, 503, after_s, maybe_reached=reached)  # type: ignore[arg-type]


TABLE: list[tuple[str, Verdict, int, bool, bool, Decision]] = [
    # (case, verdict, attempt, in doubt before, preflight, decision)
    ("erased", Erased("p1"), 1, False, False, Finish(Outcome.ERASED, False)),
    ("erased keeps doubt", Erased(None), 2, True, False, Finish(Outcome.ERASED, True)),
    ("not found", NotFound(404, "gone"), 1, False, False, Finish(Outcome.NOT_FOUND, False)),
    ("rejected", Rejected(400, "bad", 400), 3, False, False, Finish(Outcome.REJECTED, False)),
    ("token", Abort("token", 401, 200, None), 1, False, False, Stop("token")),
    ("tariff", Abort("unavailable", 402, 200, None), 2, False, True, Stop("unavailable")),
    ("wrong url", Abort("wrong_url", None, 404, None), 1, False, False, Stop("wrong_url")),
    # transient: full jitter, rand 0.5 of min(cap, base * 2 ** (attempt - 1))
    ("first retry", _retry(), 1, False, False, Wait(0.5, False)),
    ("second retry", _retry(), 2, False, False, Wait(1.0, False)),
    ("reached raises doubt", _retry(reached=True), 1, False, False, Wait(0.5, True)),
    ("doubt is kept", _retry(), 2, True, False, Wait(1.0, True)),
    ("retry-after replaces jitter", _retry(after_s=7.0), 1, False, False, Wait(7.0, False)),
    ("retry-after at the cap", _retry(after_s=60.0), 1, False, False, Wait(60.0, False)),
    (
        "retry-after over the cap",
        _retry(after_s=61.0),
        1,
        False,
        False,
        Finish(Outcome.FAILED, False, GaveUp.RETRY_AFTER),
    ),
    (
        "last attempt",
        _retry(reached=True),
        3,
        False,
        False,
        Finish(Outcome.FAILED, True, GaveUp.ATTEMPTS),
    ),
    ("connect, in a run", _retry("connect"), 1, False, False, Wait(0.5, False)),
    ("connect, at the preflight", _retry("connect"), 1, False, True, Stop("unreachable")),
    (
        "hung up at accept, at the preflight",
        Retry("connect", None, None, False, detail="(any words)", stage=Stage.HUNG_UP),
        1,
        False,
        True,
        Wait(0.5, False),
    ),
    (
        "refused, at the preflight",
        Retry("connect", None, None, False, detail="(any words)", stage=Stage.CONNECT),
        1,
        False,
        True,
        Stop("unreachable"),
    ),
    ("other failure, at the preflight", _retry("read_timeout"), 1, False, True, Wait(0.5, False)),
]


@pytest.mark.parametrize(
    ("verdict", "attempt", "in_doubt", "preflight", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_decide(
    verdict: Verdict, attempt: int, in_doubt: bool, preflight: bool, expected: Decision
) -> None:
    got = decide(verdict, attempt, POLICY, in_doubt=in_doubt, rand=0.5, preflight=preflight)
    assert expected == got


def test_the_jitter_bound_stops_growing_at_the_cap() -> None:
    waits = [POLICY.wait_s(attempt, None, rand=1.0) for attempt in range(1, 6)]
    assert [1.0, 2.0, 3.0, 3.0, 3.0] == waits


def test_the_test_mode_never_waits_and_decides_the_same() -> None:
    instant = POLICY.instant()
    assert Wait(0.0, False) == decide(_retry(after_s=30.0), 1, instant, rand=0.9)
    for verdict, attempt in ((_retry(after_s=61.0), 1), (_retry(), 3), (Erased(None), 1)):
        assert decide(verdict, attempt, POLICY) == decide(verdict, attempt, instant)


def test_the_policy_takes_the_jobs_limits() -> None:
    policy = Backoff.for_run(Run(max_attempts=4, retry_after_cap_s=12.0))
    assert (4, 12.0) == (policy.max_attempts, policy.retry_after_cap_s)
    assert (0.25, 30.0, False) == (policy.base_s, policy.cap_s, policy.testing)
