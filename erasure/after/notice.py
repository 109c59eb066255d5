"""Notices: what a request's state is, as a signed body for the systems around.

Pure (no I/O but the ledger reads at the bottom). A notice holds the
request id, its status (``complete`` or ``incomplete``), its reason codes
(the partition's reason, :mod:`erasure.partition`; never free text: a
hold's reason may name a person or a case), its counts, its deadline, the
suppression lists that keep its addresses, and never an identifier::

    {"type": "erasure.request", "version": 1, "request_id": "T-1",
     "status": "incomplete", "reasons": ["open"], "counts": {...},
     "deadline": "2026-12-31T23:59:59.999999+03:00", "suppression_lists": [7],
     "idempotency_key": "…", "receipt_sha256": null}

The ``opendsr`` body is an OpenDSR status callback (specification §8.6:
``subject_request_id``, ``request_status``, ``expected_completion_time``,
``status_callback_url``; ``controller_id``, which this tool cannot know, is
left out) with the rest under ``extensions.erasure``. No claim of
conformance is made: OpenDSR signs callbacks with an X.509 certificate,
where these are signed with a shared secret.

The signature: ``Erasure-Signature: t=TIMESTAMP,v1=HEX`` where HEX is
HMAC-SHA256(secret, ``"TIMESTAMP.BODY"``), TIMESTAMP the Unix time in
seconds and BODY the exact bytes sent. The idempotency key is a digest of
(request id, status, reasons): the same state is never announced twice,
and a receiver that sees a key again may drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from erasure import partition

SIGNATURE_HEADER = "Erasure-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VERSION = 1
# OpenDSR's request_status (specification §8): pending, in_progress, completed, cancelled
_OPENDSR_STATUS = {"complete": "completed"}


@dataclass(frozen=True, slots=True)
class State:
    """A request's state as a notice tells it."""

    request_id: str
    status: str  # complete | incomplete
    reasons: tuple[str, ...]  # partition reason codes; empty when complete
    counts: tuple[tuple[str, int], ...]  # (name, count), in a fixed order
    deadline: str | None  # ISO 8601 with its offset, or None
    suppression_lists: tuple[int, ...] = ()
    receipt_sha256: str | None = None

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.request_id, self.status, self.reasons)


def idempotency_key(request_id: str, status: str, reasons: tuple[str, ...]) -> str:
    """A digest of (request id, status, reasons): 32 hex digits, the same for the same state."""
    text = json.dumps([request_id, status, list(reasons)], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def body(state: State, fmt: str, url: str) -> bytes:
    """The notice's JSON bytes (sorted keys, compact): what is signed and sent."""
    generic: dict[str, Any] = {
        "type": "erasure.request",
        "version": VERSION,
        "request_id": state.request_id,
        "status": state.status,
        "reasons": list(state.reasons),
        "counts": dict(state.counts),
        "deadline": state.deadline,
        "suppression_lists": list(state.suppression_lists),
        "idempotency_key": state.idempotency_key,
        "receipt_sha256": state.receipt_sha256,
    }
    if fmt == "opendsr":
        status = _OPENDSR_STATUS.get(state.status, "in_progress")
        if state.reasons[:1] == (partition.Reason.CANCELLED.value,):
            status = "cancelled"
        extension = {k: v for k, v in generic.items() if k not in ("request_id", "deadline")}
        document: dict[str, Any] = {
            "subject_request_id": state.request_id,
            "request_status": status,
            "expected_completion_time": state.deadline,
            "status_callback_url": url,
            "api_version": "1.0",
            "extensions": {"erasure": extension},
        }
    else:
        document = generic
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: bytes, timestamp: int, payload: bytes) -> str:
    """The ``Erasure-Signature`` header's value for ``payload`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: bytes, header: str, payload: bytes, now: float, tolerance_s: float) -> bool:
    """What a receiver does (the README shows it with the standard library alone)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, payload).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def reasons_of(why: str | None) -> tuple[str, tuple[str, ...]]:
    """(status, reasons) from a request's partition state (``complete`` or a reason)."""
    if why is None or why == partition.COMPLETE:
        return "complete", ()
    return "incomplete", (why,)
