"""The ledger's plain chain: SHA-256 over the events' canonical bytes, no secret.

One definition for the ledger that writes it (``plain_links``), ``verify``
that recomputes it, and receipts that cite its head (re-exported by
:mod:`erasure.receipts.canonical`, whose docstring says what it proves). A
module of its own so that writing the ledger does not load what signs and
checks receipts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

__all__ = ["PLAIN_GENESIS", "plain_chain", "plain_link"]

PLAIN_GENESIS = "0" * 64  # plain_link(0): the link before the first event


def plain_link(previous: str, event: bytes) -> str:
    """The plain chain's link of one event, from the link before it (64 hex characters)."""
    return hashlib.sha256(bytes.fromhex(previous) + event).hexdigest()


def plain_chain(events: Iterable[bytes], previous: str = PLAIN_GENESIS) -> Iterator[str]:
    """The plain links of consecutive events' canonical bytes, from ``previous`` on."""
    link = previous
    for event in events:
        link = plain_link(link, event)
        yield link
