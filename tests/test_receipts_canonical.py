"""RFC 8785 canonical JSON and the plain chain: pinned by vectors, not by our own output."""

from __future__ import annotations

import hashlib
import struct

import pytest
import rfc8785

from erasure.ledger import Outcome
from erasure.receipts import (
    PLAIN_GENESIS,
    ChainHeads,
    Claim,
    InvalidRecord,
    Receipt,
    Request,
    canonical_json,
    make_receipt,
    parse_head,
    plain_chain,
    plain_link,
    sign,
)
from tests.receipts_fixtures import FIXED_KEY


def test_rfc8785_section_3_2_2_example() -> None:
    """The RFC's own example: literals, numbers and string escapes, byte for byte."""
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert expected == canonical_json(value)


def test_rfc8785_section_3_2_3_sorts_by_utf16_code_units() -> None:
    """Members sort by UTF-16 code units: the emoji (a surrogate pair) before U+FB33."""
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert expected == canonical_json(value)


@pytest.mark.parametrize(
    ("bits", "text"),
    [  # RFC 8785 Appendix B
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
        (0x44B52D02C7E14AF6, "1e+23"),
        (0x444B1AE4D6E2EF50, "1e+21"),
        (0x3EB0C6F7A0B5ED8D, "0.000001"),
        (0x41B3DE4355555553, "333333333.3333332"),
        (0xBECBF647612F3696, "-0.0000033333333333333333"),
        (0x43143FF3C1CB0959, "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(bits: int, text: str) -> None:
    (number,) = struct.unpack(">d", bits.to_bytes(8, "big"))
    assert text.encode() == canonical_json(number)


def test_integers_beyond_two_to_the_53_are_refused() -> None:
    """JCS numbers are IEEE doubles: a larger integer would not survive, so it is refused."""
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"seq": 2**53 + 1})


def test_plain_chain_vector() -> None:
    """plain_link(n) = SHA-256(bytes.fromhex(plain_link(n-1)) + event bytes), from 64 zeros."""
    first = hashlib.sha256(bytes(32) + b'[1,"t","created"]').hexdigest()
    second = hashlib.sha256(bytes.fromhex(first) + b'[2,"t","planned"]').hexdigest()
    assert "0" * 64 == PLAIN_GENESIS
    assert first == plain_link(PLAIN_GENESIS, b'[1,"t","created"]')
    assert [first, second] == list(plain_chain([b'[1,"t","created"]', b'[2,"t","planned"]']))
    # SHA-256 of 32 zero bytes: the link of an empty event, an outside constant
    assert "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925" == plain_link(
        PLAIN_GENESIS, b""
    )


def test_heads_parse_and_refuse() -> None:
    assert (12, "a" * 64) == parse_head("12:" + "a" * 64)
    for bad in ("12", "x:" + "a" * 64, "12:" + "A" * 64, "12:abc", "-1:" + "a" * 64):
        with pytest.raises(ValueError):
            parse_head(bad)


PINNED_DOCUMENT = (
    b'{"databases":[1,2],"format":"erasure-receipt/1","identifiers":[{"at":"2024-05-02T10:00'
    b':00.000000+00:00","db_id":1,"field_name":null,"in_doubt":false,"key":"0123456789abcdef'
    b'0123456789abcdef","matching":"email","outcome":"erased","profile_id":"p-17","resource_'
    b'id":null,"seq":7},{"at":"2024-05-02T10:00:01.000000+00:00","db_id":2,"field_name":"CRM_'
    b'ID","in_doubt":true,"key":"fedcba9876543210fedcba9876543210","matching":"custom","outco'
    b'me":"not_found","profile_id":null,"resource_id":24,"seq":9}],"invalid":[{"column":"Phon'
    b'e","reason":"bad_phone","resolved":true,"row":3,"seq":4}],"issued_at":"2024-05-03T00:00'
    b':00+00:00","issuer":"\xd0\x9e\xd0\x9e\xd0\x9e \xc2\xab\xd0\xa0\xd0\xbe\xd0\xbc\xd0\xb0'
    b'\xd1\x88\xd0\xba\xd0\xb0\xc2\xbb, DPO \\"office\\"","ledger":{"head":"12:'
    + b"b" * 64
    + b'","plain_head":"12:'
    + b"c" * 64
    + b'"},"reasons":[],"request":{"deadline":"2024-05-31","id":"T-1","received_at":"2024-05'
    b'-01"},"status":"complete"}'
)


def pinned_receipt() -> Receipt:
    return make_receipt(
        Request("T-1", "2024-05-01", "2024-05-31"),
        [
            Claim(7, 1, "email", "0123456789abcdef" * 2, Outcome.ERASED, False, "p-17",
                  "2024-05-02T10:00:00.000000+00:00"),
            Claim(9, 2, "custom", "fedcba9876543210" * 2, Outcome.NOT_FOUND, True, None,
                  "2024-05-02T10:00:01.000000+00:00", resource_id=24, field_name="CRM_ID"),
        ],
        [InvalidRecord(3, "Phone", "bad_phone", resolved=True, seq=4)],
        ChainHeads("12:" + "b" * 64, "12:" + "c" * 64),
        'ООО «Ромашка», DPO "office"',
        issued_at="2024-05-03T00:00:00+00:00",
    )  # fmt: skip


def test_a_receipt_document_is_pinned_to_its_bytes_and_hash() -> None:
    """The document's canonical bytes, and so what every signature covers, never drift."""
    receipt = pinned_receipt()
    body = canonical_json(receipt.to_dict())
    assert PINNED_DOCUMENT == body
    assert (
        "76587164be6dc397a6bb5b5d3369ed440ebf28741696bacae1e46c4b39a8dc88"
        == hashlib.sha256(PINNED_DOCUMENT).hexdigest()
    )
    signed = sign(receipt, FIXED_KEY)
    # Ed25519 is deterministic: the same key and bytes give the same file
    assert (
        "a1c4cfc15d3b40a02b1d973f85d1e8d9489ecea44c5d41cb06897a1823d3deaf"
        == hashlib.sha256(signed.raw).hexdigest()
    )
    assert signed.raw.startswith(b'{"receipt":' + PINNED_DOCUMENT + b',"signature":{')
    assert signed.raw.endswith(b'"}}\n')
