"""A receipt as a page for a person, with the signed JSON inside it, verbatim.

No scripts and nothing fetched (a Content-Security-Policy forbids any other
source, as in the HTML report), so the page reads the same years later. The
receipt file's exact bytes sit in ``<pre id="receipt">``, escaped only as
HTML requires (``&``, ``<``, ``>``): a person can copy them, and
:func:`extract_json` (so ``erasure check-receipt receipt.html``) gets them
back byte for byte.

The page itself is drawn by a frozen renderer (:data:`RENDERERS`, one
module each: :mod:`erasure.receipts.page_v1`, ``page_v2``), named in the signed JSON's
``renderer`` member, so that ``check-receipt`` can draw it again and find
a visible page rewritten around an intact signed JSON (:func:`page_differs`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from erasure.receipts import page_v1, page_v2
from erasure.receipts.document import (
    NotAReceipt,
    SignedReceipt,
)

__all__ = [
    "RENDERERS",
    "extract_json",
    "looks_like_html",
    "openssl_recipe",
    "page_differs",
    "render_html",
]

_PRE = re.compile(rb'<pre id="receipt"[^>]*>(.*?)</pre>', re.DOTALL)

# Every released page renderer, by the name a receipt's ``renderer`` member gives;
# a receipt without one was rendered by ``receipt-html/1``. Never remove one.
RENDERERS: dict[str, Callable[[SignedReceipt], str]] = {
    page_v1.NAME: page_v1.render,
    page_v2.NAME: page_v2.render,
}
CURRENT = page_v2.NAME  # what new receipts are rendered with
FIRST = page_v1.NAME  # what a receipt naming no renderer was rendered with


def looks_like_html(raw: bytes) -> bool:
    """Whether the bytes are a page (as :func:`render_html` writes) rather than JSON."""
    head = raw.lstrip()[:64].lower()
    return head.startswith((b"<!doctype html", b"<html"))


def extract_json(raw: bytes) -> bytes:
    """The receipt file's bytes from a page :func:`render_html` wrote; NotAReceipt if none."""
    found = _PRE.findall(raw)
    if len(found) != 1:
        raise NotAReceipt(
            'not a receipt: the page does not embed one signed receipt (<pre id="receipt">)'
        )
    try:
        return html.unescape(found[0].decode("utf-8")).encode("utf-8")
    except UnicodeDecodeError:
        raise NotAReceipt("not a receipt: the page is not UTF-8") from None


# The live words are receipt-html/1's, kept there (frozen) so that a page once
# issued never changes: to change the wording of new verdicts and recipes, write the
# new words here; page_v1 stays as it is.
openssl_recipe = page_v1._openssl_recipe
verdict = page_v1._verdict


def render_html(signed: SignedReceipt) -> str:
    """The page of ``signed``, by the renderer its document names (new receipts: CURRENT)."""
    return RENDERERS[renderer_of(signed)](signed)


def renderer_of(signed: SignedReceipt) -> str:
    """The renderer the signed document names; ``receipt-html/1`` when it names none."""
    return signed.receipt.renderer or FIRST


def page_differs(page: bytes, signed: SignedReceipt) -> str | None:
    """Why the visible ``page`` is not what ``signed`` renders to, or None when it is.

    The page is rendered again from its signed JSON by the renderer that
    JSON names, and compared byte for byte: a request id, a verdict or an
    outcome rewritten on the page, with the embedded JSON left alone, is
    found here.
    """
    name = renderer_of(signed)
    render = RENDERERS.get(name)
    if render is None:
        return f"it names the page renderer {name[:40]!r}, which this version does not have"
    if render(signed).encode("utf-8") != page:
        return (
            f"the visible page differs from what its signed receipt renders to ({name}): "
            "the page was changed after it was issued"
        )
    return None
