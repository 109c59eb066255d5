"""The preflight: one delete of an address that cannot exist, before any real one.

A ``not_found`` answer proves the token, its delete permission and the
configured ``not_found`` code at once. A refused token or a refused run
stops before any real identifier is touched; any other answer stops with
78 and names the code it saw. Transient failures are retried under the same
:func:`~erasure.run.retry.decide` as every identifier, ``retry_after_cap_s``
included: a longer ``Retry-After`` stops with 75 at once, saying so, rather
than hang. An answer that cannot be Altcraft's (404/405/501 without its
body, an HTML page with a 2xx/3xx status, a redirect) stops with 69 at once
naming what came back; 500/502/503/504 stay transient whatever their body.
Every line says what went wrong in words (:func:`erasure.client.describe`).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable

import anyio

from erasure.altcraft import Abort, DeleteRequest, NotFound, Rejected, Retry, Verdict
from erasure.errors import (
    ErasureError,
    InternalError,
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
    above ``retry_after_cap_s``, :class:`PreflightUnexpected` (78),
    :class:`InternalError` (70) when every attempt met an unforeseen exception.
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
                    f"the preflight cannot reach {base}: {verdict.detail or verdict.reason}; "
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
        if verdict.unforeseen is not None:
            raise InternalError(
                f"internal error: the preflight met an unforeseen {verdict.unforeseen} "
                f"in each of {attempts} attempts (a bug: please report it with its name)"
            )
        words = verdict.detail or verdict.reason
        raise Unreachable(
            f"the preflight to {job.api.base_url} got no usable answer in "
            f"{attempts} attempts (last: {words}{status})"
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
    if verdict.http_status is None:  # no answer at all: a URL the client cannot send to
        what = verdict.text or "no answer"
    else:
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
            f"{base_url} does not answer like Altcraft's API ({what}{_seen(verdict)}); "
            "check api.base_url"
        )
    return ServiceUnavailable(f"the service refused the whole run ({what})")


def _seen(verdict: Abort) -> str:
    """What a wrong-URL answer looked like, in words; never the service's own text."""
    status = verdict.http_status
    if verdict.text == "an HTML page":  # classify's mark for a page with a 2xx/3xx status
        return ": an HTML page, not an API answer"
    if status is not None and 300 <= status <= 399:
        return ": a redirect, which is never followed"
    return {
        404: ": no such path here",
        405: ": the method is not allowed here",
        501: ": not implemented here",
    }.get(status or 0, "")
