"""The ledger events a run writes, built from plan rows and verdicts: pure.

Every raw identifier and the token stay out: error texts are scrubbed
(:class:`erasure.echoes.Echoes`) before they become an event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from erasure import altcraft
from erasure.altcraft import DeleteRequest, Erased, Retry
from erasure.echoes import Echoes
from erasure.ledger import Event, Kind, Outcome
from erasure.run.hopper import WorkItem


def work_item(row: dict[str, Any]) -> WorkItem:
    """The work item of one row of :attr:`erasure.run.plan.Plan.work`."""
    request = DeleteRequest(
        db_id=row["db_id"],
        matching=row["matching"],
        value=row["value"],
        value_is_int=bool(row["value_is_int"]),
        field_name=row["field_name"],
        resource_id=row["resource_id"],
    )
    return WorkItem(row["key"], request, row["request_ids"], bool(row["in_doubt"]))


def planned(run: int, key: str, row: dict[str, Any]) -> list[Event]:
    """One ``planned`` event per request id naming the row's key."""
    return [
        Event(
            Kind.PLANNED,
            run,
            key=key,
            request_id=rid,
            db_id=row["db_id"],
            matching=row["matching"],
            resource_id=row["resource_id"],
            field_name=row["field_name"],
            received_at=None if received is None else _iso(received),
        )
        for rid, received in zip(row["request_ids"], row["received_ats"], strict=True)
    ]


def attempt(
    run: int, item: WorkItem, number: int, verdict: altcraft.Verdict, echoes: Echoes
) -> Event:
    """A non-final answer (or transport failure) of request ``number`` for ``item``."""
    return Event(
        Kind.ATTEMPT,
        run,
        key=item.key,
        attempt=number,
        in_doubt=int(isinstance(verdict, Retry) and verdict.maybe_reached),
        error_code=getattr(verdict, "code", None),
        error_text=_scrubbed(echoes, _text(verdict), item),
        http_status=getattr(verdict, "http_status", None),
    )


def outcomes(
    run: int,
    item: WorkItem,
    number: int,
    outcome: Outcome,
    doubt: bool,
    verdict: altcraft.Verdict,
    echoes: Echoes,
    answer: altcraft.Answer | None = None,
) -> list[Event]:
    """The ``outcome`` event of every request id naming ``item``'s key.

    The service's answer is kept for every outcome, ``erased`` and
    ``not_found`` included (issue 12): its ``error`` code, HTTP status and
    ``error_text``, the token and any identifier in it removed.
    """
    profile_id = verdict.profile_id if isinstance(verdict, Erased) else None
    said = _text(verdict) if answer is None or answer.error_text is None else answer.error_text
    text = _scrubbed(echoes, said, item)
    code = getattr(verdict, "code", None) if outcome != Outcome.ERASED else 0
    if answer is not None and answer.error is not None:
        code = answer.error
    status = answer.http_status if answer is not None else getattr(verdict, "http_status", None)
    return [
        Event(
            Kind.OUTCOME,
            run,
            key=item.key,
            request_id=rid,
            attempt=number,
            outcome=outcome,
            in_doubt=int(doubt),
            profile_id=profile_id,
            error_code=code,
            error_text=text,
            http_status=status,
        )
        for rid in item.request_ids
    ]


def _iso(value: datetime) -> str:
    return value.isoformat()


def _text(verdict: altcraft.Verdict) -> str | None:
    if isinstance(verdict, Retry):
        return verdict.reason
    return getattr(verdict, "text", None)


def _scrubbed(echoes: Echoes, text: str | None, item: WorkItem) -> str | None:
    request = item.request
    return echoes.scrub(text, request.value, item.key, request.matching)
