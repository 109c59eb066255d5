"""Signed erasure receipts: one request's outcome, provable without the ledger key.

The public face (the CLI and the ledger call only these)::

    keygen(path) -> KeyPair                      erasure keygen --out PATH
    load_private_key(path) / load_public_key(path)
    make_receipt(request, claims, invalid, heads, issuer) -> Receipt
    sign(receipt, private_key) -> SignedReceipt  .raw is the .json file's bytes
    render_html(signed) -> str                   the .html page, embedding .raw verbatim
    check(raw, public_key, events=None) -> CheckResult   (raises NotAReceipt: exit 65)
    plain_link(previous, event_bytes) -> str     the ledger's plain SHA-256 chain

Modules: :mod:`.canonical` (RFC 8785, the plain chain), :mod:`.signing`
(Ed25519 keys), :mod:`.document` (the receipt and its status),
:mod:`.parse` (reading a file strictly), :mod:`.html` (the page),
:mod:`.check` (the checker).
"""

from erasure.receipts.canonical import (
    PLAIN_GENESIS,
    canonical_json,
    format_head,
    parse_head,
    plain_chain,
    plain_link,
)
from erasure.receipts.check import CheckResult, LedgerEvent, Problem, check
from erasure.receipts.document import (
    FORMAT,
    ChainHeads,
    Claim,
    InvalidRecord,
    NotAReceipt,
    Reason,
    ReasonCount,
    Receipt,
    Request,
    Signature,
    SignedReceipt,
    Status,
    assess,
    describe_reasons,
    make_receipt,
    sign,
)
from erasure.receipts.html import extract_json, openssl_recipe, render_html, verdict
from erasure.receipts.parse import parse_signed
from erasure.receipts.signing import (
    KeyPair,
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    private_key_from_pem,
    public_key_from_pem,
    public_path_of,
)

__all__ = [
    "FORMAT",
    "PLAIN_GENESIS",
    "ChainHeads",
    "CheckResult",
    "Claim",
    "InvalidRecord",
    "KeyPair",
    "LedgerEvent",
    "NotAReceipt",
    "Problem",
    "Reason",
    "ReasonCount",
    "Receipt",
    "Request",
    "Signature",
    "SignedReceipt",
    "Status",
    "assess",
    "canonical_json",
    "check",
    "describe_reasons",
    "extract_json",
    "fingerprint",
    "format_head",
    "keygen",
    "load_private_key",
    "load_public_key",
    "make_receipt",
    "openssl_recipe",
    "parse_head",
    "parse_signed",
    "plain_chain",
    "plain_link",
    "private_key_from_pem",
    "public_key_from_pem",
    "public_path_of",
    "render_html",
    "sign",
    "verdict",
]
