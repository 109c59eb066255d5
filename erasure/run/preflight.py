"""The preflight: one delete of an address that cannot exist, before any real one.

A ``not_found`` answer proves the token, its delete permission and the
configured ``not_found`` code at once. A refused token or a refused run
stops before any real identifier is touched; any other answer stops with
78 and names the code it saw. Transient failures are retried under the same
:func:`~erasure.run.retry.decide` as every identifier.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable

import anyio

from erasure.altcraft import Abort, DeleteRequest, NotFound, Rejected, Retry, Verdict
from erasure.errors import (
    ErasureError,
    PreflightUnexpected,
    ServiceUnavailable,
    TokenRefused,
    TryAgainLater,
    Unreachable,
    WrongEndpoint,
)
from erasure.job import Job
from erasure.ledger import Outcome
from erasure.run.retry import Backoff, Finish, GaveUp, Stop, Wait, decide

Send = Callable[[DeleteRequest], Awaitable[Verdict]]


def preflight_request(db_id: int) -> DeleteRequest:
    """A delete by an email address that no profile can have."""
    return DeleteRequest(
        db_id=db_id,
        matching="email",
        value=f"erasure-preflight-{secrets.token_hex(8)}@example.com",
    )


async def preflight(job: Job, db_id: int, send_once: Send, policy: Backoff) -> NotFound:
    """Send the preflight until it has an answer; return it when it proves the job.

    Raises the :class:`~erasure.errors.ErasureError` that says why the run
    must not start: :class:`TokenRefused` (77), :class:`ServiceUnavailable`
    or one of its kinds (69), :class:`TryAgainLater` (75) for a Retry-After
    above ``retry_after_cap_s``, :class:`PreflightUnexpected` (78).
    """
    request = preflight_request(db_id)
    base = job.api.base_url
    attempt = 1
    while True:
        verdict = await send_once(request)
        decision = decide(verdict, attempt, policy, rand=random.random(), preflight=True)
        if isinstance(decision, Wait):
            await anyio.sleep(decision.seconds)
            attempt += 1
            continue
        if isinstance(decision, Stop):
            if decision.kind == "unreachable" and isinstance(verdict, Retry):
                raise Unreachable(
                    f"cannot reach {base}: connection failed ({verdict.reason}); "
                    "check api.base_url, DNS, TLS and proxies"
                )
            assert isinstance(verdict, Abort)
            raise abort_error(verdict, base)
        return _judge(decision, verdict, job, attempt)


def _judge(decision: Finish, verdict: Verdict, job: Job, attempts: int) -> NotFound:
    if isinstance(verdict, NotFound):
        return verdict
    if isinstance(verdict, Retry):
        status = f", HTTP {verdict.http_status}" if verdict.http_status is not None else ""
        if decision.gave_up is GaveUp.RETRY_AFTER:
            raise TryAgainLater(
                f"the preflight to {job.api.base_url} was asked to wait "
                f"{verdict.after_s:.0f} s (Retry-After{status}), longer than [run] "
                f"retry_after_cap_s = {job.run.retry_after_cap_s:g}; run again later"
            )
        raise Unreachable(
            f"the preflight to {job.api.base_url} got no usable answer in "
            f"{attempts} attempts (last: {verdict.reason}{status})"
        )
    if decision.outcome is Outcome.ERASED:
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


def abort_error(verdict: Abort, base_url: str) -> ErasureError:
    """The error that ends the run for a run-wide refusal, in words."""
    what = f"HTTP {verdict.http_status}" + (
        f", error {verdict.code}" if verdict.code is not None else ""
    )
    if verdict.kind == "token":
        return TokenRefused(
            f"the service refused the token ({what}): missing, invalid, or "
            "without the delete permission"
        )
    if verdict.kind == "wrong_url":
        return WrongEndpoint(
            f"{base_url} does not answer like Altcraft ({what}); check api.base_url"
        )
    return ServiceUnavailable(f"the service refused the whole run ({what})")
