"""Receipt page renderer ``receipt-html/1``: FROZEN, never edit it.

``check-receipt`` re-renders an HTML receipt's page from its signed JSON
with the renderer the JSON names (``renderer``; a receipt without one was
rendered by this one) and says "not valid" when the visible page differs:
so a page once issued must render to the same bytes for ever. A change to
the page is a new module (``page_v2``, renderer ``receipt-html/2``) added
to :data:`erasure.receipts.html.RENDERERS`, with a receipt it rendered as a
test fixture (``tests/hostile/fixtures``); this one stays as it is.

Everything the page says is here, the words included (copied from the
release that shipped it), so that changing the live wording elsewhere
never changes an issued page.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from erasure.receipts.document import ReasonCount, Receipt, SignedReceipt, Status

NAME = "receipt-html/1"

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa}
main{max-width:980px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;
border-bottom:2px solid #d9e2ec;padding-bottom:4px}
.meta{color:#616e7c;margin:0}
.verdict{font-size:18px;padding:12px 16px;border-radius:6px;border-left:6px solid}
.complete{background:#e8f5e9;border-color:#2e7d32}.incomplete{background:#fff3e0;border-color:#ef6c00}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #d9e2ec;vertical-align:top}
th{background:#f5f7fa}td{overflow-wrap:anywhere}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f5f7fa;padding:10px;white-space:pre-wrap;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{color:#616e7c}dd{margin:0}
"""
_OUTCOME_WORDS = {
    "erased": "erased: the service deleted the profile",
    "not_found": "not found: the service had no such profile, nothing to erase",
    "rejected": "rejected: the service refused it, a person must look",
    "failed": "failed for now: temporary failures, the next run retries",
    "pending": "pending: not finished yet",
}
_MATCHING_WORDS = {
    "email": "email address",
    "phone": "phone number",
    "profile_id": "profile id",
    "custom": "custom field",
}


_REASON_WORDS: dict[str, tuple[str, str]] = {
    "no_identifiers": ("the request named no usable identifier", ""),
    "held": ("identifier is under a legal hold", "identifiers are under a legal hold"),
    "cancelled": (
        "identifier was cancelled with the request",
        "identifiers were cancelled with the request",
    ),
    "invalid": ("input cell could not be used", "input cells could not be used"),
    "rejected": (
        "identifier was refused by the service",
        "identifiers were refused by the service",
    ),
    "failed": (
        "identifier met only temporary failures so far",
        "identifiers met only temporary failures so far",
    ),
    "pending": ("identifier is not finished yet", "identifiers are not finished yet"),
    "in_doubt": (
        "identifier may have been reached by a request whose answer was lost",
        "identifiers may have been reached by requests whose answers were lost",
    ),
}


def _openssl_recipe(receipt: str = "receipt.json", public_key: str = "receipts.key.pub") -> str:
    """Shell lines that check a receipt file's signature with sed, tr and openssl alone.

    The signed bytes are the slice of the file between ``{"receipt":`` and
    ``,"signature":`` (JCS sorts the members; a JSON string can hold neither
    text, as its quotes would be escaped). The last line prints the SHA-256
    of the public key, to compare with ``public_key_sha256``.
    """
    return "\n".join(
        (
            f"""sed -e 's/^{{"receipt"://' -e 's/,"signature":{{[^}}]*}}}}$//' {receipt} """
            "| tr -d '\\n' > signed.json",
            f"""sed -e 's/^.*"value":"\\([^"]*\\)"}}}}$/\\1/' {receipt} """
            "| openssl base64 -d -A > signature.bin",
            f"openssl pkeyutl -verify -pubin -inkey {public_key} -rawin "
            "-in signed.json -sigfile signature.bin",
            f"openssl pkey -pubin -in {public_key} -outform DER | openssl dgst -sha256",
        )
    )


def _on_time(finished: str, deadline: str) -> bool:
    """Finished by the deadline: instants compared (a deadline that is a date: by date)."""
    if "T" not in deadline:
        return finished[:10] <= deadline
    try:
        return datetime.fromisoformat(finished) <= datetime.fromisoformat(deadline).replace(
            microsecond=999_999
        )
    except ValueError:
        return finished[:10] <= deadline[:10]


def _verdict(receipt: Receipt) -> str:
    """The receipt's verdict in one sentence."""
    rid = receipt.request.id
    deadline = receipt.request.deadline
    dbs = _databases(receipt.databases)
    if receipt.status == Status.COMPLETE:
        n = len(receipt.identifiers)
        last = max((c.at for c in receipt.identifiers if c.at), default=None)
        when = f" by {last[:10]}" if last else ""
        if deadline and last:
            when += (
                f", within its deadline of {deadline}"
                if _on_time(last, deadline)
                else f", after its deadline of {deadline}"
            )
        return (
            f"Request {rid} is complete: every profile it named in {dbs} was deleted or was "
            f"not there ({n} identifier{'s' * (n != 1)}){when}."
        )
    due = f" Its deadline is {deadline}." if deadline else ""
    return (
        f"Request {rid} is not complete: {_describe_reasons(receipt.reasons)} "
        f"(as of {receipt.issued_at[:10]}).{due}"
    )


def _databases(dbs: tuple[int, ...]) -> str:
    if not dbs:
        return "no database"
    if len(dbs) == 1:
        return f"Altcraft database {dbs[0]}"
    return "Altcraft databases " + ", ".join(str(d) for d in dbs)


def render(signed: SignedReceipt) -> str:
    """The page: what was asked, what was done and when, the verdict, how to check it."""
    r = signed.receipt
    e = html.escape
    kinds = Counter(_MATCHING_WORDS.get(c.matching, c.matching) for c in r.identifiers)
    asked = ", ".join(f"{n} {k}{'s' * (n != 1)}" for k, n in sorted(kinds.items())) or "none"
    rows = "".join(
        "<tr>"
        f"<td>{e(_MATCHING_WORDS.get(c.matching, c.matching))}"
        f"{' (' + e(c.field_name) + ')' if c.field_name else ''}</td>"
        f"<td>{c.db_id}{'' if c.resource_id is None else f' / resource {c.resource_id}'}</td>"
        f"<td>{e(_OUTCOME_WORDS.get(c.outcome.value, c.outcome.value))}"
        f"{'; in doubt: an earlier request may have reached the service' if c.in_doubt else ''}"
        f"{'; ' + e(c.decision) if c.decision else ''}"
        f"</td><td class=mono>{e(c.profile_id or '')}</td><td class=mono>{e(c.at or '')}</td>"
        f"<td class=mono>{e(c.key)}</td><td>{c.seq}</td></tr>"
        for c in r.identifiers
    )
    invalid = "".join(
        f"<tr><td>{v.row}</td><td>{e(v.column)}</td><td>{e(v.reason)}</td>"
        f"<td>{'yes: a later input fixed it' if v.resolved else 'no'}</td></tr>"
        for v in r.invalid
    )
    invalid_section = (
        "<h2>Input cells that could not be used</h2><p>The cells' values are not kept.</p>"
        "<table><tr><th>row</th><th>column</th><th>reason</th><th>resolved</th></tr>"
        f"{invalid}</table>"
        if r.invalid
        else ""
    )
    recipe = e(_openssl_recipe())
    return "\n".join(
        (
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            f"<title>Erasure receipt: request {e(r.request.id)}</title>",
            f"<style>{_CSS}</style></head><body><main>",
            f"<h1>Erasure receipt: request {e(r.request.id)}</h1>",
            f"<p class=meta>Issued by {e(r.issuer)} on {e(r.issued_at)}.</p>",
            f'<p class="verdict {r.status.value}">{e(_verdict(r))}</p>',
            "<h2>What was asked</h2><dl>",
            f"<dt>Request</dt><dd>{e(r.request.id)}</dd>",
            f"<dt>Received</dt><dd>{e(r.request.received_at or 'not given')}</dd>",
            f"<dt>Deadline</dt><dd>{e(r.request.deadline or 'not given')}</dd>",
            *(
                [f"<dt>Original deadline</dt><dd>{e(r.request.original_deadline)} (extended)</dd>"]
                if r.request.original_deadline
                else []
            ),
            f"<dt>Databases searched</dt><dd>{e(_databases(r.databases))}</dd>",
            f"<dt>Identifiers</dt><dd>{e(asked)}</dd></dl>",
            "<h2>What was done</h2>",
            "<p>Each identifier appears only as its keyed hash (<i>key</i>), as in the ledger: "
            "this receipt holds no email address, phone number or other raw value.</p>",
            "<table><tr><th>identifier</th><th>database</th><th>outcome</th><th>profile id</th>"
            f"<th>when (UTC)</th><th>key</th><th>ledger event</th></tr>{rows}</table>",
            invalid_section,
            "<h2>How to check it</h2>",
            "<p>The receipt below is signed with Ed25519 by the issuer's key "
            f"(SHA-256 of the public key: <code>{e(signed.signature.public_key_sha256)}</code>). "
            "With the issuer's public key, <code>receipts.key.pub</code>, and the receipt saved "
            "as <code>receipt.json</code> (or this page itself):</p>",
            "<pre>erasure check-receipt receipt.json --public-key receipts.key.pub</pre>",
            "<p>or with <code>openssl</code> alone (it prints "
            "<code>Signature Verified Successfully</code>):</p>",
            f"<pre>{recipe}</pre>",
            "<p>Whoever holds the ledger can also check that its events up to the receipt's "
            "head say the same: <code>erasure check-receipt receipt.json --public-key "
            "receipts.key.pub --job JOB</code>. Ledger heads at issue: keyed "
            f"<code>{e(r.heads.keyed)}</code>, plain <code>{e(r.heads.plain)}</code>.</p>",
            "<h2>The signed receipt</h2>",
            '<pre id="receipt">' + html.escape(signed.raw.decode("utf-8"), quote=False) + "</pre>",
            "</main></body></html>",
            "",
        )
    )


def _describe_reasons(reasons: Iterable[ReasonCount]) -> str:
    parts = []
    for r in reasons:
        one, many = _REASON_WORDS[r.reason.value]
        parts.append(one if not many else f"{r.count} {one if r.count == 1 else many}")
    return ", ".join(parts)
