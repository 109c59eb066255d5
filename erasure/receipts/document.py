"""The receipt document: what one request came to, as signed JSON.

A receipt answers one request (one request id) without holding any raw
identifier, nor anything computed from the ledger key alone (a key
fingerprint would let anyone test guesses of the key). The file is the
RFC 8785 canonical JSON of::

    {"receipt": {...the document...},
     "signature": {"algorithm": "Ed25519",
                   "public_key_sha256": "<hex SHA-256 of the signer's DER public key>",
                   "value": "<base64 Ed25519 signature of the document's canonical bytes>"}}

followed by one newline. Because JCS sorts members and ``"receipt"`` comes
before ``"signature"``, the signed bytes are a verbatim slice of the file:
everything between ``{"receipt":`` and ``,"signature":``. So ``sed`` and
``openssl`` alone can check it (the recipe is in :mod:`erasure.receipts.html`).

A request is ``complete`` only when it has at least one identifier, every
one ``erased`` or ``not_found``, and no unresolved invalid record;
otherwise ``incomplete``, with every reason that applies.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from erasure import partition
from erasure.declared import Check, declare, fields_of
from erasure.errors import InputUnusable
from erasure.ledger import Outcome
from erasure.receipts.canonical import canonical_json, parse_head
from erasure.receipts.signing import (
    ALGORITHM,
    fingerprint,
    sign_bytes,
)

__all__ = [
    "FORMAT",
    "ChainHeads",
    "Claim",
    "InvalidRecord",
    "NotAReceipt",
    "Reason",
    "ReasonCount",
    "Receipt",
    "Request",
    "Signature",
    "SignedReceipt",
    "Status",
    "assess",
    "describe_reasons",
    "make_receipt",
    "sign",
]

FORMAT = "erasure-receipt/1"  # names the document's shape; a new shape gets a new number
RENDERER = "receipt-html/2"  # the page renderer new receipts name (erasure.receipts.html)
_PREFIX = b'{"receipt":'
MATCHING = frozenset({"email", "phone", "profile_id", "custom"})


class NotAReceipt(InputUnusable):
    """The bytes are not an erasure receipt (exit 65): not JSON, or not this shape."""


class Status(enum.StrEnum):
    """The verdict on one request, a closed set."""

    # At least one identifier, every one erased or not_found, no unresolved invalid cell.
    COMPLETE = "complete"
    # Anything else; the reasons say what is missing.
    INCOMPLETE = "incomplete"


class Reason(enum.StrEnum):
    """What keeps a request from complete, a closed set, in the partition's order.

    A receipt lists every one that applies; the first listed is the request's
    reason in the partition (erasure.partition, :data:`PARTITION`), the one
    ``status`` and every report count it under. Receipts issued before the
    partition listed ``invalid`` before ``rejected``; they still check.
    """

    # The request named no identifier the tool could use.
    NO_IDENTIFIERS = "no_identifiers"
    # A legal hold keeps identifiers from being sent (erasure hold).
    HELD = "held"
    # The request was withdrawn (erasure cancel).
    CANCELLED = "cancelled"
    # The service refused identifiers: a person must look.
    REJECTED = "rejected"
    # Input cells of the request could not be used, and no later input fixed them.
    INVALID = "invalid"
    # Transient failures used every attempt; the next run retries.
    FAILED = "failed"
    # Not finished yet.
    PENDING = "pending"
    # Not final, and a request for it may have reached the service unanswered.
    IN_DOUBT = "in_doubt"


# Each receipt reason's place in the partition (erasure.partition): the first a receipt
# lists is the request's partition reason.
PARTITION: dict[Reason, partition.Reason] = {
    Reason.NO_IDENTIFIERS: partition.Reason.NO_IDENTIFIER,
    Reason.HELD: partition.Reason.HELD,
    Reason.CANCELLED: partition.Reason.CANCELLED,
    Reason.REJECTED: partition.Reason.REJECTED,
    Reason.INVALID: partition.Reason.INVALID,
    Reason.FAILED: partition.Reason.OPEN,
    Reason.PENDING: partition.Reason.OPEN,
    Reason.IN_DOUBT: partition.Reason.OPEN,
}
assert list(Reason) == sorted(Reason, key=lambda r: partition.REASONS.index(PARTITION[r]))

# for people: how many of what (the HTML page and the checker's lines)
REASON_WORDS: dict[Reason, tuple[str, str]] = {
    Reason.NO_IDENTIFIERS: ("the request named no usable identifier", ""),
    Reason.HELD: ("identifier is under a legal hold", "identifiers are under a legal hold"),
    Reason.CANCELLED: (
        "identifier was cancelled with the request",
        "identifiers were cancelled with the request",
    ),
    Reason.INVALID: ("input cell could not be used", "input cells could not be used"),
    Reason.REJECTED: (
        "identifier was refused by the service",
        "identifiers were refused by the service",
    ),
    Reason.FAILED: (
        "identifier met only temporary failures so far",
        "identifiers met only temporary failures so far",
    ),
    Reason.PENDING: ("identifier is not finished yet", "identifiers are not finished yet"),
    Reason.IN_DOUBT: (
        "identifier may have been reached by a request whose answer was lost",
        "identifiers may have been reached by requests whose answers were lost",
    ),
}
_DONE = frozenset({Outcome.ERASED, Outcome.NOT_FOUND})


def member(
    default: Any = MISSING,
    *,
    name: str | None = None,
    omitted: bool = False,
    choices: frozenset[str] | None = None,
    check: Check | None = None,
) -> Any:
    """A member of the receipt's JSON, declared once for the writer and the reader.

    ``name``: the member's, when not the field's; ``omitted``: written only when
    set (receipts without it keep their earlier shape), else None is null.
    ``choices`` closes a text member; ``check`` says why a value does not fit.
    The reader requires every member not ``omitted``, whatever the default.
    """
    return declare(default, name=name, omitted=omitted, choices=choices, check=check)


def encode(value: Any) -> Any:
    """A declared dataclass (and what it holds) as JSON values, by its declaration."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.metadata["name"] or f.name: encode(getattr(value, f.name))
            for f, _ in fields_of(type(value))
            if not (f.metadata["omitted"] and getattr(value, f.name) is None)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    return value


def _head(value: str) -> str | None:
    try:
        parse_head(value)
    except ValueError:
        return "is not SEQ:LINK"
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """The request a receipt answers."""

    id: str = member()  # the DSR ticket (request id column)
    received_at: str | None = member(None)  # as the input gave it (ISO 8601)
    # the deadline in force: the end of the due day, an ISO 8601 instant with its offset
    # (receipts before erasure.deadlines: an ISO date)
    deadline: str | None = member(None)
    # where an extension moved it (erasure extend); written only when extended
    original_deadline: str | None = member(None, omitted=True)


@dataclass(frozen=True, slots=True)
class Claim:
    """What became of one identifier of the request, and the event that says so."""

    seq: int = member()  # ledger sequence number of the event that recorded it (pending: its plan)
    db_id: int = member()
    matching: str = member(choices=MATCHING)  # email | phone | profile_id | custom
    key: str = member()  # the identifier's keyed hash, as in the ledger (never the identifier)
    outcome: Outcome = member()
    in_doubt: bool = member()  # a request may have reached the service before its answer was lost
    profile_id: str | None = member(None)  # data.profile_id from the service's answer
    at: str | None = member(None)  # UTC ISO 8601: when the outcome was recorded
    resource_id: int | None = member(None)
    field_name: str | None = member(None)  # custom matching only: the Altcraft field's name
    # held or cancelled: the person's decision in words (who, since, why); written only
    # then, so that every other receipt keeps its earlier shape
    decision: str | None = member(None, omitted=True)
    # [suppress]: "the address is kept on suppression list N" once it is; written only
    # then, so that every other receipt keeps its earlier shape
    suppressed: str | None = member(None, omitted=True)


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """An input cell of the request that could not be used (never its value)."""

    row: int = member()  # as a spreadsheet numbers it
    column: str = member()
    reason: str = member()  # a reason code, e.g. bad_email
    resolved: bool = member(False)  # a later input brought a usable value for this column
    seq: int | None = member(None)  # the ledger event that recorded it


@dataclass(frozen=True, slots=True)
class ChainHeads:
    """The ledger's two chain heads when the receipt was issued, as ``SEQ:LINK``."""

    keyed: str = member(name="head", check=_head)  # the HMAC chain's: what ``verify`` prints
    plain: str = member(name="plain_head", check=_head)  # the SHA-256 chain's: needs no key

    @property
    def seq(self) -> int:
        return parse_head(self.plain)[0]


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: Reason = member()
    count: int = member()  # identifiers or invalid records; 0 for no_identifiers


def _this_format(value: str) -> str | None:
    if value != FORMAT:
        raise NotAReceipt(f"not a receipt this version reads: format {value[:40]!r}, not {FORMAT}")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """The signed statement about one request (without its signature).

    Its members are read in this order, the first misfit named: ``format``
    first, so that a receipt of a later shape says so.
    """

    # the HTML page renderer (erasure.receipts.html.RENDERERS); None: receipts
    # issued before it was named, drawn by receipt-html/1, whose bytes omit it
    renderer: str | None = member(None, omitted=True)
    format: str = member(FORMAT, check=_this_format)
    request: Request = member()
    identifiers: tuple[Claim, ...] = member()
    invalid: tuple[InvalidRecord, ...] = member()
    reasons: tuple[ReasonCount, ...] = member()  # empty when complete
    heads: ChainHeads = member(name="ledger")
    databases: tuple[int, ...] = member()  # the db_ids searched, ascending
    status: Status = member()
    issuer: str = member()
    issued_at: str = member()  # UTC ISO 8601

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, as it is canonicalised and signed."""
        document: dict[str, Any] = encode(self)
        return document


@dataclass(frozen=True, slots=True)
class Signature:
    algorithm: str  # always Ed25519
    public_key_sha256: str  # the signer's public key fingerprint (hex)
    value: bytes  # 64 bytes; base64 in the JSON


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """A receipt, its signature, and the exact bytes of the file (``raw``)."""

    receipt: Receipt
    signature: Signature
    raw: bytes = field(repr=False)  # canonical JSON of the whole, then b"\n"

    @property
    def signed_bytes(self) -> bytes:
        """The canonical bytes of the document: what the signature covers."""
        return canonical_json(self.receipt.to_dict())


# ---------------------------------------------------------------- building


def assess(
    identifiers: Iterable[Claim], invalid: Iterable[InvalidRecord]
) -> tuple[Status, tuple[ReasonCount, ...]]:
    """The status the claims support, and every reason it is not complete."""
    claims = list(identifiers)
    counts: dict[Reason, int] = dict.fromkeys(Reason, 0)
    counts[Reason.INVALID] = sum(1 for r in invalid if not r.resolved)
    for claim in claims:
        if claim.outcome in _DONE:
            continue
        counts[Reason(claim.outcome.value)] += 1  # held, cancelled, rejected, failed or pending
        if claim.in_doubt:
            counts[Reason.IN_DOUBT] += 1
    reasons = [ReasonCount(r, n) for r, n in counts.items() if n]
    if not claims:
        reasons.insert(0, ReasonCount(Reason.NO_IDENTIFIERS, 0))
    # the first listed is the partition's reason, by the one rule
    why = partition.reason_of(
        {
            "pairs": len(claims),
            **{o.value: sum(1 for c in claims if c.outcome == o) for o in Outcome},
            "held": counts[Reason.HELD],
            "cancelled": counts[Reason.CANCELLED],
            "invalid_unresolved": counts[Reason.INVALID],
        }
    )
    assert (why is None) == (not reasons) and (not reasons or PARTITION[reasons[0].reason] == why)
    return (Status.INCOMPLETE if reasons else Status.COMPLETE), tuple(reasons)


def request_reason(reasons: Sequence[ReasonCount]) -> partition.Reason | None:
    """The request's reason in the partition: that of the first reason a receipt lists."""
    return PARTITION[reasons[0].reason] if reasons else None


def describe_reasons(reasons: Iterable[ReasonCount]) -> str:
    """Reasons in words: ``1 identifier was refused by the service, 2 input cells ...``."""
    parts = []
    for r in reasons:
        one, many = REASON_WORDS[r.reason]
        parts.append(one if not many else f"{r.count} {one if r.count == 1 else many}")
    return ", ".join(parts)


def make_receipt(
    request: Request,
    identifiers: Sequence[Claim],
    invalid: Sequence[InvalidRecord],
    heads: ChainHeads,
    issuer: str,
    *,
    issued_at: str | None = None,
    databases: Iterable[int] | None = None,
    renderer: str | None = None,
) -> Receipt:
    """A receipt whose status and reasons follow from the claims (never a false one).

    ``databases`` defaults to the identifiers' db_ids; ``issued_at`` to now
    (UTC, seconds).
    """
    parse_head(heads.keyed)
    parse_head(heads.plain)
    status, reasons = assess(identifiers, invalid)
    dbs = {c.db_id for c in identifiers} if databases is None else set(databases)
    return Receipt(
        request=request,
        databases=tuple(sorted(dbs)),
        status=status,
        reasons=reasons,
        identifiers=tuple(identifiers),
        invalid=tuple(invalid),
        heads=heads,
        issuer=issuer,
        issued_at=issued_at or datetime.now(UTC).isoformat(timespec="seconds"),
        renderer=renderer,
    )


def sign(receipt: Receipt, key: Ed25519PrivateKey) -> SignedReceipt:
    """Sign the receipt's canonical bytes; the file's bytes are in ``raw``."""
    document = receipt.to_dict()
    body = canonical_json(document)
    signature = Signature(ALGORITHM, fingerprint(key.public_key()), sign_bytes(key, body))
    raw = canonical_json({"receipt": document, "signature": _signature_dict(signature)}) + b"\n"
    # the property the openssl recipe rests on: the signed bytes are a slice of the file
    assert raw[len(_PREFIX) : len(_PREFIX) + len(body)] == body
    return SignedReceipt(receipt, signature, raw)


def _signature_dict(signature: Signature) -> dict[str, str]:
    return {
        "algorithm": signature.algorithm,
        "public_key_sha256": signature.public_key_sha256,
        "value": base64.b64encode(signature.value).decode("ascii"),
    }
