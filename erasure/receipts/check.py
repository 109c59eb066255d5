"""Checking a receipt: its signature, and (given the ledger's events) its claims.

``check`` answers in three ways:

* raises :class:`~erasure.receipts.document.NotAReceipt` (exit 65) when the
  bytes are not a receipt at all;
* returns a :class:`CheckResult` that is not ``valid`` (exit 1), naming the
  :class:`Problem`: a changed byte, another key, a ledger that is not the
  one it was issued from, events changed after issue;
* returns a ``valid`` result (exit 0), ``superseded`` when events recorded
  after the receipt changed what it says about the request.

No secret is needed: the signature is checked with the public key, the
ledger with its plain SHA-256 chain (:func:`~erasure.receipts.canonical.plain_link`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from erasure.ledger import Outcome
from erasure.receipts.canonical import PLAIN_GENESIS, canonical_json, parse_head, plain_link
from erasure.receipts.document import (
    Claim,
    NotAReceipt,
    Reason,
    ReasonCount,
    Receipt,
    SignedReceipt,
    Status,
    assess,
    describe_reasons,
)
from erasure.receipts.html import extract_json, looks_like_html, page_differs
from erasure.receipts.parse import load_envelope, parse_document
from erasure.receipts.signing import fingerprint, verify_bytes

__all__ = ["CheckResult", "LedgerEvent", "Problem", "check"]

# ledger event kinds read here (erasure.ledger.Kind and the invalid-cell events)
_OUTCOME = "outcome"
_PLANNED = "planned"
_INVALID = "invalid"
_PRINT = 16  # hex characters of a fingerprint shown in messages


class Problem(enum.StrEnum):
    """Why a receipt is not valid, a closed set."""

    # The document or its signature was changed after signing.
    TAMPERED = "tampered"
    # The signature was made with another key than the public key given.
    WRONG_KEY = "wrong_key"
    # Signed, but its status does not follow from its own claims.
    INCONSISTENT = "inconsistent"
    # The ledger given is not the one the receipt was issued from.
    OTHER_LEDGER = "other_ledger"
    # The ledger's events up to the signed head were changed, removed or inserted.
    CHAIN_BROKEN = "chain_broken"
    # An event the receipt cites says something else than the receipt.
    EVENT_MISMATCH = "event_mismatch"
    # An HTML receipt's visible page is not what its signed JSON renders to.
    PAGE_CHANGED = "page_changed"


class LedgerEvent(NamedTuple):
    """One ledger event as the checker needs it, oldest first.

    ``fields`` are the event's columns by name (``kind``, ``key``,
    ``request_id``, ``outcome``, ``profile_id``, ``db_id``, ``matching``,
    ``at``, ...; an invalid-cell event's ``row``, ``column``, ``reason``),
    read from the same row as ``canonical``.
    """

    seq: int
    canonical: bytes  # the bytes both chains cover (erasure.ledger.canonical)
    fields: Mapping[str, Any]
    plain_link: str  # as stored in the ledger


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What :func:`check` found; ``message`` is one line for a person."""

    valid: bool
    message: str
    problem: Problem | None = None
    receipt: Receipt | None = None  # set once the signature held
    signer: str | None = None  # the signing key's fingerprint (hex)
    ledger_checked: bool = False
    events_checked: int = 0  # events up to the signed head
    superseded: bool = False  # later events changed what the receipt says
    status_now: Status | None = None  # the request's status after later events
    reasons_now: tuple[ReasonCount, ...] = ()


def check(
    raw: bytes, public_key: Ed25519PublicKey, events: Iterable[LedgerEvent] | None = None
) -> CheckResult:
    """Check a receipt (its JSON file, or the HTML page embedding it).

    With ``events`` (the whole ledger, oldest first), also check that the
    plain chain recomputes to the signed head and that every cited event
    says what the receipt says. Raises :class:`NotAReceipt` for bytes that
    are not a receipt.
    """
    page = None
    if looks_like_html(raw):
        page, raw = raw, extract_json(raw)
    document, signature = load_envelope(raw)
    try:
        body = canonical_json(document)
    except ValueError as exc:  # rfc8785.CanonicalizationError: a number JCS cannot hold
        raise NotAReceipt(f"not a receipt: {exc}") from None
    given = fingerprint(public_key)
    if not verify_bytes(public_key, signature.value, body):
        if signature.public_key_sha256 != given:
            return CheckResult(
                False,
                f"not valid: signed by key sha256:{signature.public_key_sha256[:_PRINT]}, "
                f"not by the public key given (sha256:{given[:_PRINT]})",
                Problem.WRONG_KEY,
            )
        return CheckResult(
            False,
            "not valid: the signature does not match the document: "
            "it was changed after it was signed",
            Problem.TAMPERED,
        )
    if signature.public_key_sha256 != given:
        return CheckResult(
            False,
            "not valid: the signature holds, but the signature block names another key "
            f"(sha256:{signature.public_key_sha256[:_PRINT]}): it was changed after signing",
            Problem.TAMPERED,
        )
    receipt = parse_document(document)
    status, reasons = assess(receipt.identifiers, receipt.invalid)
    # in any order: receipts issued before the partition listed invalid before rejected
    if (status, set(reasons)) != (receipt.status, set(receipt.reasons)):
        return CheckResult(
            False,
            f"not valid: the receipt says {receipt.status}, its own identifiers say {status}",
            Problem.INCONSISTENT,
            receipt,
            given,
        )
    if page is not None:
        changed = page_differs(page, SignedReceipt(receipt, signature, raw))
        if changed is not None:
            return CheckResult(False, f"not valid: {changed}", Problem.PAGE_CHANGED, receipt, given)
    ok = CheckResult(True, "", receipt=receipt, signer=given, status_now=receipt.status)
    if events is None:
        return replace(
            ok,
            message=f"valid: signed by sha256:{given[:_PRINT]}; {_summary(receipt)}; "
            "the ledger was not consulted",
        )
    return _against_ledger(ok, receipt, events)


def _summary(receipt: Receipt) -> str:
    n = len(receipt.identifiers)
    said = f"request {receipt.request.id!r} {receipt.status} ({n} identifier{'s' * (n != 1)})"
    if receipt.reasons:
        said += ": " + describe_reasons(receipt.reasons)
    return said


def _against_ledger(
    ok: CheckResult, receipt: Receipt, events: Iterable[LedgerEvent]
) -> CheckResult:
    head_seq, head_link = parse_head(receipt.heads.plain)
    request_id = receipt.request.id
    cited: dict[int, Claim] = {c.seq: c for c in receipt.identifiers}
    cited_invalid = {r.seq: r for r in receipt.invalid if r.seq is not None}
    link, seen, first_break = PLAIN_GENESIS, 0, 0
    recognised = 0  # cited events that at least name this request and key
    mismatch: str | None = None
    # what later events say about the request's identifiers, by key
    now = {c.key: c for c in receipt.identifiers}
    changed, new_invalid = False, 0
    for seq, data, fields, stored in events:
        if seq > head_seq and seen >= head_seq:
            if fields.get("request_id") != request_id:
                continue
            kind, key = fields.get("kind"), fields.get("key")
            if kind == _OUTCOME and isinstance(key, str):
                before = now.get(key)
                try:
                    said = fields.get("outcome")  # none: a decision ended, open again
                    outcome = Outcome.PENDING if said is None else Outcome(str(said))
                except ValueError:
                    continue  # an outcome this version does not know changes nothing it can judge
                if before is None or before.outcome != outcome:
                    changed = True
                    now[key] = _later_claim(before, seq, key, outcome, fields)
            elif kind == _PLANNED and isinstance(key, str) and key not in now:
                changed = True
                now[key] = _later_claim(None, seq, key, Outcome.PENDING, fields)
            elif kind == _INVALID:
                changed = True
                new_invalid += 1
            continue
        seen += 1
        if seq != seen:
            problem = (
                f"event {seen} is missing (the next is {seq})"
                if seq > seen
                else f"event {seq} appears twice"
            )
            return _refuse(ok, Problem.CHAIN_BROKEN, f"the ledger is broken: {problem}", seen - 1)
        link = plain_link(link, data)
        if stored != link and not first_break:
            first_break = seq
        if seq in cited:
            claim = cited[seq]
            if fields.get("request_id") == request_id and fields.get("key") == claim.key:
                recognised += 1
            mismatch = mismatch or _compare_claim(seq, claim, fields, request_id)
        elif seq in cited_invalid:
            record = cited_invalid[seq]
            if fields.get("request_id") == request_id:
                recognised += 1
            wanted = {"row": record.row, "column": record.column, "reason": record.reason}
            mismatch = mismatch or _compare(seq, fields, request_id, wanted)
    if seen < head_seq:
        return _refuse(
            ok,
            Problem.OTHER_LEDGER,
            f"the ledger has {seen} events, the receipt was issued at event {head_seq}: "
            "it is a receipt for another ledger (or the ledger lost its last events)",
            seen,
        )
    if link != head_link:
        if (cited or cited_invalid) and not recognised:
            return _refuse(
                ok,
                Problem.OTHER_LEDGER,
                f"none of the events the receipt cites is about request {request_id!r} and "
                "the ledger's plain chain does not reach the signed head: it is a receipt for "
                "another ledger",
                seen,
            )
        if mismatch:
            return _refuse(
                ok,
                Problem.EVENT_MISMATCH,
                f"{mismatch}: changed after the receipt was issued",
                seen,
            )
        where = (
            f"event {first_break} does not match its plain chain link"
            if first_break
            else f"the plain chain's head at event {head_seq} is {link[:_PRINT]}…, "
            f"the receipt's {head_link[:_PRINT]}…"
        )
        return _refuse(
            ok,
            Problem.CHAIN_BROKEN,
            f"{where}: events up to {head_seq} were changed after the receipt was issued",
            seen,
        )
    if mismatch:  # the chain holds, so the receipt itself claims what the ledger never said
        return _refuse(ok, Problem.EVENT_MISMATCH, mismatch, seen)
    said = (
        f"valid: signed by sha256:{(ok.signer or '')[:_PRINT]}; {_summary(receipt)}; "
        f"the ledger's {head_seq} events up to the signed head are intact and say so"
    )
    result = replace(ok, message=said, ledger_checked=True, events_checked=head_seq)
    if not changed:
        return result
    status, reasons = assess(now.values(), receipt.invalid)
    if new_invalid:
        status, reasons = _with_invalid(status, reasons, new_invalid)
    return replace(
        result,
        message=f"{said}; superseded: later events changed request {request_id!r}, "
        f"now {status}" + (f" ({describe_reasons(reasons)})" if reasons else ""),
        superseded=True,
        status_now=status,
        reasons_now=reasons,
    )


def _later_claim(
    before: Claim | None, seq: int, key: str, outcome: Outcome, fields: Mapping[str, Any]
) -> Claim:
    in_doubt = bool(fields.get("in_doubt"))
    if before is not None:
        return replace(before, seq=seq, outcome=outcome, in_doubt=in_doubt)
    return Claim(
        seq=seq,
        db_id=int(fields.get("db_id") or 0),
        matching=str(fields.get("matching") or ""),
        key=key,
        outcome=outcome,
        in_doubt=in_doubt,
    )


def _with_invalid(
    status: Status, reasons: tuple[ReasonCount, ...], extra: int
) -> tuple[Status, tuple[ReasonCount, ...]]:
    counts = {r.reason: r.count for r in reasons}
    counts[Reason.INVALID] = counts.get(Reason.INVALID, 0) + extra
    ordered = tuple(ReasonCount(r, counts[r]) for r in Reason if r in counts)
    return Status.INCOMPLETE, ordered


def _compare_claim(
    seq: int, claim: Claim, fields: Mapping[str, Any], request_id: str
) -> str | None:
    wanted: dict[str, Any] = {
        "key": claim.key,
        "outcome": None if claim.outcome == Outcome.PENDING else claim.outcome.value,
        "profile_id": claim.profile_id,
        "db_id": claim.db_id,
        "matching": claim.matching,
    }
    if claim.at is not None:
        wanted["at"] = claim.at
    return _compare(seq, fields, request_id, wanted)


def _compare(
    seq: int, fields: Mapping[str, Any], request_id: str, wanted: Mapping[str, Any]
) -> str | None:
    """The first field of event ``seq`` that differs from the receipt's claim, in words."""
    for name, want in {"request_id": request_id, **wanted}.items():
        if name not in fields and name not in ("request_id", "key", "outcome"):
            continue  # the ledger does not keep this field for this event
        got = fields.get(name)
        if got != want:
            return f"event {seq} says {name} {_show(got)}, the receipt says {_show(want)}"
    return None


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(str(value)[:40])


def _refuse(ok: CheckResult, problem: Problem, why: str, events: int) -> CheckResult:
    return replace(
        ok,
        valid=False,
        message=f"not valid: {why}",
        problem=problem,
        ledger_checked=True,
        events_checked=events,
        status_now=None,
    )
