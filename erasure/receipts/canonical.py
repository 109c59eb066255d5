"""Canonical bytes: RFC 8785 JSON for what is signed, and the ledger's plain chain.

Both are pure functions, shared by whoever writes (``erasure receipt``, the
ledger) and whoever checks (``erasure check-receipt``), so that the two can
never drift apart. The plain chain's own definition is
:mod:`erasure.plainchain` (the ledger writes it without loading what signs
receipts); it is re-exported here, where receipts cite it.

The plain chain runs beside the ledger's keyed chain over the same events::

    plain_link(0) = "00…00"                                   (64 hex zeros)
    plain_link(n) = SHA-256(bytes.fromhex(plain_link(n - 1)) + canonical_event_bytes(n))

It needs no secret: anyone holding the ledger can recompute it, and so
check that the events up to a receipt's signed plain head are the ones the
receipt cites. (The keyed chain, an HMAC, is what stops someone without the
ledger key from rewriting the ledger and its chain together.)
"""

from __future__ import annotations

from typing import Any

import rfc8785

from erasure.plainchain import PLAIN_GENESIS, plain_chain, plain_link

__all__ = [
    "PLAIN_GENESIS",
    "canonical_json",
    "format_head",
    "parse_head",
    "plain_chain",
    "plain_link",
]


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 (JCS) bytes of a JSON value: sorted members, no spaces, UTF-8.

    Raises ``rfc8785.CanonicalizationError`` for what JCS cannot represent
    exactly (integers beyond ±2**53, NaN, infinities).
    """
    return rfc8785.dumps(value)


def format_head(seq: int, link: str) -> str:
    """A chain head as ``SEQ:LINK``, the form ``erasure verify`` prints."""
    return f"{seq}:{link}"


def parse_head(head: str) -> tuple[int, str]:
    """``SEQ:LINK`` back into its parts; ``ValueError`` when it is not one."""
    seq, sep, link = head.partition(":")
    if not sep or not seq.isascii() or not seq.isdigit() or not _is_hex64(link):
        raise ValueError(f"not a chain head SEQ:LINK: {head[:80]!r}")
    return int(seq), link


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
