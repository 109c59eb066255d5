"""The keys are HMAC-SHA256 as the contract says, however Keyer computes them."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from erasure.keys import KEY_HEX_LENGTH, Keyer, message_prefix


def reference(secret: bytes, prefix: str, value: str) -> str:
    return hmac.new(secret, (prefix + value).encode(), hashlib.sha256).hexdigest()[:KEY_HEX_LENGTH]


@given(
    secret=st.binary(min_size=1, max_size=200),  # past 64 bytes a key is hashed first
    values=st.lists(st.text(max_size=80), max_size=20),
    db_id=st.integers(min_value=1, max_value=10**9),
    resource_id=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_keys_equal_hmac_sha256(
    secret: bytes, values: list[str], db_id: int, resource_id: int | None
) -> None:
    keyer = Keyer(secret)
    prefix = message_prefix(db_id, "email", resource_id, None)
    expected = [reference(secret, prefix, v) for v in values]
    assert keyer.keys(prefix, values) == expected
    assert [keyer.key(db_id, "email", resource_id, None, v) for v in values] == expected


def test_a_64_byte_secret_and_a_65_byte_one_follow_rfc_2104() -> None:
    for size in (63, 64, 65, 128):
        secret = bytes(range(size))
        assert Keyer(secret).keys("p\x1f", ["a@b.ru"]) == [reference(secret, "p\x1f", "a@b.ru")]


def test_the_key_depends_on_every_part_of_the_identity() -> None:
    keyer = Keyer(b"k" * 32)
    base = keyer.key(1, "email", 2, None, "a@b.ru")
    assert base != keyer.key(3, "email", 2, None, "a@b.ru")
    assert base != keyer.key(1, "email", None, None, "a@b.ru")
    assert base != keyer.key(1, "custom", 2, None, "a@b.ru")
    assert base != Keyer(b"j" * 32).key(1, "email", 2, None, "a@b.ru")
    assert len(base) == KEY_HEX_LENGTH
    int(base, 16)


@given(previous=st.text(alphabet="0123456789abcdef", max_size=64), content=st.binary())
def test_chain_links_equal_hmac_sha256(previous: str, content: bytes) -> None:
    secret = b"chain-secret"
    expected = hmac.new(
        secret, b"chain\x1f" + previous.encode() + b"\x1f" + content, hashlib.sha256
    ).hexdigest()
    assert Keyer(secret).chain(previous, content) == expected
