"""Receipts end to end: built from a real ledger file, signed, checked, and refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from erasure import ledger as L
from erasure import partition
from erasure.errors import ExitCode
from erasure.keys import Keyer
from erasure.ledger import Outcome
from erasure.receipts import (
    ChainHeads,
    Claim,
    InvalidRecord,
    NotAReceipt,
    Problem,
    Reason,
    ReasonCount,
    Receipt,
    Request,
    SignedReceipt,
    Status,
    assess,
    canonical_json,
    check,
    extract_json,
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    make_receipt,
    openssl_recipe,
    render_html,
    sign,
    verdict,
)
from erasure.receipts.document import request_reason
from erasure.receipts.parse import parse_document, parse_signed
from tests.receipts_fixtures import (
    FIXED_KEY,
    ledger_events,
    receipt_from_ledger,
    write_ledger,
)

KEYER = Keyer(b"receipt-test-ledger-key-0123456789")
A, B = "a" * 32, "b" * 32
HEADS = ChainHeads("3:" + "1" * 64, "3:" + "2" * 64)


def _claim(seq: int, outcome: Outcome, *, in_doubt: bool = False, key: str = A) -> Claim:
    return Claim(seq, 1, "email", key, outcome, in_doubt, None, "2024-05-02T10:00:00+00:00")


def _signed_for(
    tmp_path: Path, outcomes: tuple[str, ...] = ("erased", "not_found")
) -> tuple[Path, SignedReceipt]:
    """A real ledger where request T-1 has these outcomes, and its signed receipt."""
    path = tmp_path / "ledger.sqlite"
    write_ledger(path, KEYER, (A, B)[: len(outcomes)], outcomes)
    return path, sign(receipt_from_ledger(path, KEYER), FIXED_KEY)


# ---------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("claims", "invalid", "status", "reasons"),
    [
        ([], [], Status.INCOMPLETE, [(Reason.NO_IDENTIFIERS, 0)]),
        ([_claim(1, Outcome.ERASED), _claim(2, Outcome.NOT_FOUND, key=B)], [], Status.COMPLETE, []),
        # a final not_found after a request that may have arrived: the erasure is done
        ([_claim(1, Outcome.NOT_FOUND, in_doubt=True)], [], Status.COMPLETE, []),
        ([_claim(1, Outcome.REJECTED)], [], Status.INCOMPLETE, [(Reason.REJECTED, 1)]),
        (
            [_claim(1, Outcome.PENDING, in_doubt=True), _claim(2, Outcome.FAILED, key=B)],
            [],
            Status.INCOMPLETE,
            [(Reason.FAILED, 1), (Reason.PENDING, 1), (Reason.IN_DOUBT, 1)],
        ),
        (
            [_claim(1, Outcome.ERASED)],
            [InvalidRecord(3, "Email", "bad_email")],
            Status.INCOMPLETE,
            [(Reason.INVALID, 1)],
        ),
        (
            [_claim(1, Outcome.ERASED)],
            [InvalidRecord(3, "Email", "bad_email", resolved=True)],
            Status.COMPLETE,
            [],
        ),
    ],
)
def test_complete_only_when_everything_is_erased_or_not_found(
    claims: list[Claim],
    invalid: list[InvalidRecord],
    status: Status,
    reasons: list[tuple[Reason, int]],
) -> None:
    assert (status, tuple(ReasonCount(r, n) for r, n in reasons)) == assess(claims, invalid)
    receipt = make_receipt(Request("T-1"), claims, invalid, HEADS, "ACME")
    assert status == receipt.status
    words = verdict(receipt)
    assert words.startswith("Request T-1 is complete" if claims and not reasons else
                            "Request T-1 is not complete: ")  # fmt: skip


def test_verdict_sentence_names_the_deadline() -> None:
    receipt = make_receipt(
        Request("T-1", "2024-05-01", "2024-05-31"),
        [_claim(1, Outcome.ERASED), _claim(2, Outcome.NOT_FOUND, key=B)],
        [],
        HEADS,
        "ACME",
    )
    assert (
        "Request T-1 is complete: every profile it named in Altcraft database 1 was deleted or "
        "was not there (2 identifiers) by 2024-05-02, within its deadline of 2024-05-31."
        == verdict(receipt)
    )
    late = dataclasses.replace(receipt, request=Request("T-1", "2024-04-01", "2024-05-01"))
    assert verdict(late).endswith("after its deadline of 2024-05-01.")
    rejected = make_receipt(
        Request("T-9", None, "2024-05-31"),
        [_claim(1, Outcome.REJECTED)],
        [InvalidRecord(2, "Phone", "bad_phone"), InvalidRecord(4, "Phone", "bad_phone")],
        HEADS,
        "ACME",
        issued_at="2024-05-03T00:00:00+00:00",
    )
    assert (
        "Request T-9 is not complete: 1 identifier was refused by the service, 2 input cells "
        "could not be used (as of 2024-05-03). Its deadline is 2024-05-31." == verdict(rejected)
    )
    # the first reason listed is the partition's, as status and every report count it
    assert request_reason(rejected.reasons) is partition.Reason.REJECTED
    # a receipt issued before the partition listed invalid first: it still checks
    older = dataclasses.replace(rejected, reasons=tuple(reversed(rejected.reasons)))
    assert older.reasons[0].reason is Reason.INVALID
    assert check(sign(older, FIXED_KEY).raw, FIXED_KEY.public_key()).valid


# ---------------------------------------------------------------- signature


def test_a_fresh_receipt_is_valid_with_and_without_the_ledger(tmp_path: Path) -> None:
    path, signed = _signed_for(tmp_path)
    public = FIXED_KEY.public_key()
    alone = check(signed.raw, public)
    assert alone.valid and not alone.ledger_checked
    assert signed.receipt == alone.receipt
    events = ledger_events(path)
    full = check(signed.raw, public, events)
    assert full.valid, full.message
    assert full.ledger_checked and not full.superseded
    assert len(events) == full.events_checked
    assert Status.COMPLETE == full.status_now
    assert "the ledger's 12 events up to the signed head are intact" in full.message


def test_every_changed_byte_is_refused(tmp_path: Path) -> None:
    """Each byte of the file, changed alone, makes it not a receipt or not valid: never valid."""
    _, signed = _signed_for(tmp_path)
    public = FIXED_KEY.public_key()
    kinds: set[object] = set()
    for i in range(len(signed.raw) - 1):  # the final newline is outside the JSON
        tampered = bytearray(signed.raw)
        tampered[i] ^= 0x01
        try:
            result = check(bytes(tampered), public)
        except NotAReceipt:
            kinds.add("not a receipt")
            continue
        assert not result.valid, f"byte {i} changed and still valid"
        kinds.add(result.problem)
    assert {"not a receipt", Problem.TAMPERED} == kinds


def test_a_tampered_outcome_is_refused_naming_why(tmp_path: Path) -> None:
    _, signed = _signed_for(tmp_path, ("rejected",))
    forged = signed.raw.replace(b'"outcome":"rejected"', b'"outcome":"erased"').replace(
        b'"status":"incomplete"', b'"status":"complete"'
    )
    assert forged != signed.raw
    result = check(forged, FIXED_KEY.public_key())
    assert not result.valid
    assert Problem.TAMPERED == result.problem
    assert (
        "not valid: the signature does not match the document: it was changed after it was signed"
        == result.message
    )


def test_a_wrong_public_key_is_refused_naming_both_keys(tmp_path: Path) -> None:
    _, signed = _signed_for(tmp_path)
    other = keygen(tmp_path / "other.key")
    result = check(signed.raw, load_public_key(other.public_path))
    assert Problem.WRONG_KEY == result.problem
    assert f"not valid: signed by key sha256:{signed.signature.public_key_sha256[:16]}, " in (
        result.message
    )
    assert f"not by the public key given (sha256:{other.fingerprint[:16]})" in result.message


def test_a_receipt_whose_status_its_claims_do_not_support_is_refused() -> None:
    """Even signed, a "complete" over a rejected identifier is never accepted."""
    honest = make_receipt(Request("T-1"), [_claim(1, Outcome.REJECTED)], [], HEADS, "ACME")
    false = dataclasses.replace(honest, status=Status.COMPLETE, reasons=())
    result = check(sign(false, FIXED_KEY).raw, FIXED_KEY.public_key())
    assert Problem.INCONSISTENT == result.problem
    assert "the receipt says complete, its own identifiers say incomplete" in result.message


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"SQLite format 3\x00", "not JSON"),
        (b'{"status":"complete"}', "receipt and signature"),
        (b"[1,2]", "receipt and signature"),
        (b'{"receipt":{},"signature":{"algorithm":"RSA"}}', "algorithm, public_key_sha256"),
        (b'{"receipt":{},"receipt":{},"signature":{}}', "appears twice"),
        (b'{"receipt":{"n":NaN},"signature":{}}', "not JSON"),
        (b"<!doctype html><p>hello</p>", "does not embed one signed receipt"),
    ],
)
def test_what_is_not_a_receipt_is_exit_65(raw: bytes, why: str) -> None:
    with pytest.raises(NotAReceipt, match=why) as err:
        check(raw, FIXED_KEY.public_key())
    assert ExitCode.DATAERR == err.value.exit_code
    assert str(err.value).startswith("not a receipt: ")


def test_a_signed_document_of_another_shape_is_not_a_receipt() -> None:
    document = {"format": "erasure-receipt/1", "status": "complete"}
    block = {
        "algorithm": "Ed25519",
        "public_key_sha256": fingerprint(FIXED_KEY.public_key()),
        "value": base64.b64encode(FIXED_KEY.sign(canonical_json(document))).decode(),
    }
    raw = canonical_json({"receipt": document, "signature": block})
    with pytest.raises(NotAReceipt, match=r"receipt\.request is missing"):
        check(raw, FIXED_KEY.public_key())


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change: the member at ``path`` (``identifiers.0.outcome``) set to ``value``, or dropped."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for step in parents:
            node = node[int(step)] if isinstance(node, list) else node[step]
        if value is _DEL:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return change


_DEL = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("format", "erasure-receipt/2", "this version reads: format 'erasure-receipt/2', not "),
        ("renderer", 2, "receipt.renderer is not text"),
        ("request.id", 5, "request.id is not text"),
        ("request.deadline", _DEL, "request.deadline is missing"),
        ("request.original_deadline", None, "request.original_deadline is not text"),
        ("identifiers", {}, "receipt.identifiers is not a list"),
        ("identifiers.1", [], "identifiers[1] is not an object"),
        ("identifiers.0.seq", True, "identifiers[0].seq is not an integer"),
        ("identifiers.0.matching", "fax", "identifiers[0].matching 'fax' is unknown"),
        ("identifiers.1.outcome", "gone", "identifiers[1].outcome 'gone' is unknown"),
        ("identifiers.0.in_doubt", 0, "identifiers[0].in_doubt is not true or false"),
        ("identifiers.1.decision", None, "identifiers[1].decision is not text"),
        ("identifiers.0.extra", 1, "identifiers[0] has unknown members (extra)"),
        ("invalid.0.resolved", _DEL, "invalid[0].resolved is missing"),
        ("reasons.0.reason", "late", "reasons[0].reason 'late' is unknown"),
        ("ledger", [], "receipt.ledger is not an object"),
        ("ledger.head", "3", "ledger.head is not SEQ:LINK"),
        ("ledger.plain_head", None, "ledger.plain_head is not text"),
        ("databases", [1, "2"], "databases[] is not an integer"),
        ("status", "done", "receipt.status 'done' is unknown"),
        ("issued_at", _DEL, "receipt.issued_at is missing"),
        ("note", "hi", "receipt has unknown members (note)"),
    ],
)
def test_a_misfit_member_is_refused_naming_it(path: str, value: object, message: str) -> None:
    """Whatever the declaration of the document does not allow is exit 65, naming the member."""
    document = _FULL.to_dict()
    _set(path, value)(document)
    with pytest.raises(NotAReceipt) as err:
        parse_document(document)
    assert ExitCode.DATAERR == err.value.exit_code
    assert str(err.value).startswith("not a receipt")
    assert message in str(err.value)


# ---------------------------------------------------------------- the ledger


def test_a_receipt_for_another_ledger_is_refused(tmp_path: Path) -> None:
    _, signed = _signed_for(tmp_path)
    other = tmp_path / "other" / "ledger.sqlite"
    write_ledger(other, Keyer(b"another ledger key"), ("c" * 32, "d" * 32), ("erased", "erased"))
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(other))
    assert Problem.OTHER_LEDGER == result.problem
    assert "it is a receipt for another ledger" in result.message
    # a shorter ledger ends before the signed head
    short = tmp_path / "short.sqlite"
    write_ledger(short, KEYER, (A,), ("erased",))
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(short))
    assert Problem.OTHER_LEDGER == result.problem
    assert "the ledger has 9 events, the receipt was issued at event 12" in result.message


def _rewrite(path: Path, sql: str) -> None:
    """Change a ledger behind the tool's back (the schema's triggers dropped first)."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;" + sql
        )  # fmt: skip


def test_a_cited_event_changed_after_issue_is_refused_naming_it(tmp_path: Path) -> None:
    """A forger who rewrites an outcome and recomputes the plain chain is still caught."""
    path, signed = _signed_for(tmp_path, ("erased", "rejected"))
    cited = next(c for c in signed.receipt.identifiers if c.outcome == Outcome.REJECTED)
    _rewrite(path, f"UPDATE events SET outcome = 'erased' WHERE seq = {cited.seq};")
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert Problem.EVENT_MISMATCH == result.problem
    assert (
        f"not valid: event {cited.seq} says outcome 'erased', the receipt says 'rejected': "
        "changed after the receipt was issued" == result.message
    )


def test_an_uncited_event_changed_after_issue_breaks_the_chain(tmp_path: Path) -> None:
    path, signed = _signed_for(tmp_path)
    before = [ev.plain_link for ev in ledger_events(path)]
    _rewrite(path, "UPDATE events SET detail = '{\"exit_code\":1}' WHERE kind = 'run_finished';")
    kept = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path, stored=before))
    assert Problem.CHAIN_BROKEN == kept.problem
    assert "event 12 does not match its plain chain link" in kept.message
    # recomputed by a forger: the signed head still tells
    forged = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert Problem.CHAIN_BROKEN == forged.problem
    assert "events up to 12 were changed after the receipt was issued" in forged.message


def test_a_removed_event_is_named(tmp_path: Path) -> None:
    path, signed = _signed_for(tmp_path)
    _rewrite(path, "DELETE FROM events WHERE seq = 4;")
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert Problem.CHAIN_BROKEN == result.problem
    assert "not valid: the ledger is broken: event 4 is missing (the next is 5)" == result.message


def _append(path: Path, *events: L.Event) -> None:
    with L.Ledger(path, KEYER) as led:
        led.append(list(events))


def test_later_events_are_fine_and_a_changed_status_is_superseded(tmp_path: Path) -> None:
    path, signed = _signed_for(tmp_path, ("erased", "rejected"))
    assert Status.INCOMPLETE == signed.receipt.status
    # another request's events after issue change nothing about this one
    _append(path, L.Event(L.Kind.OUTCOME, 2, key="f" * 32, request_id="T-2", outcome="erased"))
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert result.valid and not result.superseded
    # the rejected identifier is sent again (--retry-rejected) and erased
    _append(
        path,
        L.Event(L.Kind.OUTCOME, 3, key=B, request_id="T-1", db_id=1, matching="email",
                outcome="erased", in_doubt=0, profile_id="p-bbbb"),
    )  # fmt: skip
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert result.valid and result.superseded
    assert Status.COMPLETE == result.status_now
    assert result.message.endswith("superseded: later events changed request 'T-1', now complete")
    # and a later input names one more identifier of the request
    _append(path, L.Event(L.Kind.PLANNED, 4, key="9" * 32, request_id="T-1", db_id=1,
                          matching="phone"))  # fmt: skip
    result = check(signed.raw, FIXED_KEY.public_key(), ledger_events(path))
    assert result.superseded
    assert Status.INCOMPLETE == result.status_now
    assert (ReasonCount(Reason.PENDING, 1),) == result.reasons_now


def test_the_receipt_holds_no_ledger_key_fingerprint(tmp_path: Path) -> None:
    """Nothing in it lets anyone test guesses of the ledger key alone."""
    _, signed = _signed_for(tmp_path)
    html = render_html(signed)
    assert KEYER.fingerprint not in signed.raw.decode()
    assert KEYER.fingerprint not in html
    assert "key_fingerprint" not in signed.raw.decode()


# ---------------------------------------------------------------- the page


def test_the_page_embeds_the_signed_json_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    write_ledger(path, KEYER, (A,), ("erased",))
    receipt: Receipt = dataclasses.replace(
        receipt_from_ledger(path, KEYER),
        issuer='ООО «Ромашка» </pre><script>alert(1)</script> &amp; "DPO"',
    )
    signed = sign(receipt, FIXED_KEY)
    page = render_html(signed)
    assert signed.raw == extract_json(page.encode())
    assert "<script" not in page  # the issuer's text is escaped, and the page has no script
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert check(page.encode(), FIXED_KEY.public_key()).valid
    assert check(page.encode(), FIXED_KEY.public_key(), ledger_events(path)).valid
    assert f'<p class="verdict complete">{verdict(receipt)}</p>' in page
    for words in ("What was asked", "What was done", "How to check it", "openssl pkeyutl"):
        assert words in page


# every member a receipt may hold: the ones written only when set, too
_FULL = make_receipt(
    Request("T-1", "2024-05-01", "2024-05-31T23:59:59+00:00", "2024-05-15"),
    [
        _claim(5, Outcome.ERASED),
        Claim(
            6, 2, "custom", B, Outcome.HELD, True, None, None, 7, "crm_id", "held by DPO", "list 7"
        ),
    ],
    [
        InvalidRecord(3, "email", "bad_email", False, 4),
        InvalidRecord(4, "phone", "bad_phone", True),
    ],
    HEADS,
    "X",
    renderer="receipt-html/2",
)


@pytest.mark.parametrize(
    "receipt",
    [
        make_receipt(Request("T-1", None, None), [_claim(5, Outcome.ERASED)], [], HEADS, "X"),
        _FULL,
    ],
    ids=["bare", "full"],
)
def test_parse_signed_round_trips(receipt: Receipt) -> None:
    """The writer and the reader follow one declaration: what is written reads back the same."""
    signed = sign(receipt, FIXED_KEY)
    assert signed.receipt == parse_signed(signed.raw).receipt
    assert json.loads(signed.raw)["signature"]["algorithm"] == "Ed25519"
    document = json.loads(signed.raw)["receipt"]
    # the members written only when set: a receipt without them keeps its earlier shape
    full = receipt is _FULL
    assert ("original_deadline" in document["request"]) == full
    assert ("renderer" in document) == full
    assert {"decision", "suppressed"}.isdisjoint(document["identifiers"][0])
    assert ({"decision", "suppressed"} <= set(document["identifiers"][-1])) == full


# ---------------------------------------------------------------- openssl alone


def _sh(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-ec", script], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def test_the_openssl_recipe_checks_a_receipt(tmp_path: Path) -> None:
    """The README's recipe, run as written: sed, tr and openssl (3.0+), no erasure."""
    assert shutil.which("openssl"), "the recipe test needs openssl on the PATH"
    key = tmp_path / "receipts.key"
    pair = keygen(key)
    path = tmp_path / "ledger.sqlite"
    write_ledger(path, KEYER, (A, B), ("erased", "not_found"))
    signed = sign(
        dataclasses.replace(receipt_from_ledger(path, KEYER), issuer='Ромашка ,"signature":{x}}'),
        load_private_key(key),
    )
    (tmp_path / "receipt.json").write_bytes(signed.raw)
    done = _sh(openssl_recipe(), tmp_path)
    assert 0 == done.returncode, done.stderr
    assert "Signature Verified Successfully" in done.stdout
    assert pair.fingerprint in done.stdout.splitlines()[-1]
    assert signed.signed_bytes == (tmp_path / "signed.json").read_bytes()
    # one changed byte, and openssl says no
    (tmp_path / "receipt.json").write_bytes(signed.raw.replace(b'"erased"', b'"erasee"'))
    refused = _sh(openssl_recipe(), tmp_path)
    assert 0 != refused.returncode
    assert "Signature Verification Failure" in refused.stdout + refused.stderr
