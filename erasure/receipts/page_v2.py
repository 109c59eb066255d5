"""Receipt page renderer ``receipt-html/2``: FROZEN, never edit it.

``receipt-html/1``'s page (:mod:`erasure.receipts.page_v1`, drawn by it,
byte for byte), and where an identifier's address is kept on an Altcraft
suppression list (``[suppress]``), a section saying so before "How to check
it". A receipt with nothing suppressed draws exactly as under
``receipt-html/1``. See page_v1 for why a renderer never changes: a change
is ``page_v3``.
"""

from __future__ import annotations

import html

from erasure.receipts import page_v1
from erasure.receipts.document import SignedReceipt

NAME = "receipt-html/2"
_BEFORE = "<h2>How to check it</h2>"  # page_v1 draws this heading once, and never changes


def render(signed: SignedReceipt) -> str:
    """receipt-html/1's page, with the suppression lists that keep the addresses."""
    page = page_v1.render(signed)
    kept = [c for c in signed.receipt.identifiers if c.suppressed]
    if not kept:
        return page
    e = html.escape
    items = "".join(
        f"<li><span class=mono>{e(c.key)}</span>: {e(c.suppressed or '')}</li>" for c in kept
    )
    section = (
        "<h2>Kept from coming back</h2>"
        "<p>The address behind each of these identifiers was erased from the profiles, and "
        "is kept on an Altcraft suppression list, so that Altcraft refuses to write to it "
        "again. The list keeps the address itself: ask the issuer to take it off.</p>"
        f"<ul>{items}</ul>\n"
    )
    return page.replace(_BEFORE, section + _BEFORE, 1)
