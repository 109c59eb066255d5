"""Keys: what the ledger, the logs and the reports hold instead of identifiers.

A key is HMAC-SHA256, under the ledger key, of the identifier's identity:
db_id, matching mode, resource_id, field name and the normalised value,
joined by the ASCII unit separator (which no normalised value contains).
The first 128 bits are kept, as 32 hex characters: ample against collisions
for any number of people, and half the memory of the full digest.

The rules that turn a raw cell into a normalised value, and the message the
key is computed over, carry versions; the ledger stores both and a
fingerprint of the ledger key, and refuses a run whose rules or key differ
(it would otherwise see every identifier as new and send them all again).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

NORMALISATION_VERSION = "n1"  # erasure.normalize rules
DERIVATION_VERSION = "d1"  # the message below, HMAC-SHA256 truncated to 128 bits
KEY_HEX_LENGTH = 32
_SEP = "\x1f"


def message_prefix(
    db_id: int, matching: str, resource_id: int | None, field_name: str | None
) -> str:
    """The part of the keyed message shared by every value of one column."""
    rid = "" if resource_id is None else str(resource_id)
    return _SEP.join((DERIVATION_VERSION, str(db_id), matching, rid, field_name or "")) + _SEP


class Keyer:
    """Computes keys fast: the HMAC is keyed once, then copied per value.

    ``hmac.new(...).copy()`` plus one ``update`` costs about half of
    ``hmac.digest`` per value, since the key schedule is not redone.
    """

    def __init__(self, secret: bytes) -> None:
        self._base = hmac.new(secret, digestmod=hashlib.sha256)
        self.fingerprint = hmac.new(
            secret, b"erasure ledger key fingerprint", hashlib.sha256
        ).hexdigest()[:16]

    def key(
        self,
        db_id: int,
        matching: str,
        resource_id: int | None,
        field_name: str | None,
        value: str,
    ) -> str:
        """The key of one normalised identifier."""
        h = self._base.copy()
        h.update((message_prefix(db_id, matching, resource_id, field_name) + value).encode())
        return h.hexdigest()[:KEY_HEX_LENGTH]

    def keys(self, prefix: str, values: Iterable[str]) -> list[str]:
        """Keys of many normalised values sharing one :func:`message_prefix`."""
        base = self._base.copy()
        base.update(prefix.encode())
        out: list[str] = []
        append = out.append
        copy = base.copy
        for value in values:
            h = copy()
            h.update(value.encode())
            append(h.hexdigest()[:KEY_HEX_LENGTH])
        return out

    def chain(self, previous: str, content: bytes) -> str:
        """The ledger's chain link: HMAC over the previous link and this content."""
        h = self._base.copy()
        h.update(b"chain" + _SEP.encode() + previous.encode() + _SEP.encode() + content)
        return h.hexdigest()
