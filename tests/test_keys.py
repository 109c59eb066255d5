"""The keys are HMAC-SHA256 as the contract says, however Keyer computes them.

New ledgers (derivation d2) key identifiers and chain links under two HKDF
subkeys of the ledger key; older ones (d1) under the ledger key itself. An
identifier key computes the same keys as its ledger key, and no chain link.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import cli
from erasure.errors import ConfigError
from erasure.keys import (
    DERIVATION_VERSION,
    IDKEY_PREFIX,
    KEY_HEX_LENGTH,
    Keyer,
    Role,
    hkdf_sha256,
    identifier_key_text,
    keyer_from_text,
    message_prefix,
    new_ledger_key,
    subkeys,
)
from tests import e2e
from tests.conftest import LEDGER_KEY
from tests.sandbox_fixture import Sandbox


def reference(secret: bytes, prefix: str, value: str) -> str:
    return hmac.new(secret, (prefix + value).encode(), hashlib.sha256).hexdigest()[:KEY_HEX_LENGTH]


def chain_reference(secret: bytes, previous: str, content: bytes) -> str:
    message = b"chain\x1f" + previous.encode() + b"\x1f" + content
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


# RFC 5869, appendix A: test cases 1, 2 and 3 (SHA-256).
RFC_5869 = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        "0b" * 22,
        "",
        "",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC_5869)
def test_hkdf_matches_the_rfc_vectors(
    ikm: str, salt: str, info: str, length: int, okm: str
) -> None:
    out = hkdf_sha256(
        bytes.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length
    )
    assert okm == out.hex()


# Subkeys as the hand-written HKDF of release 0.x derived them (ledger key,
# identifier subkey, chain subkey): every existing d2 ledger depends on them.
KNOWN_SUBKEYS = [
    (
        "00" * 32,
        "a50dc702267d105fed191cb59b5412fc0edb578cfbc2d4865cddbe2955b9b3b1",
        "07c0008ef5e55c877081af18f1af2dac41a99bb9d03d5e8785e08e04ad2d2d91",
    ),
    (
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "f9c2b4eaa36e0e88eb9d57cc383088bbf425f5bf5afcfb1ae04de093ce8b1dac",
        "67095dd360223071b8c240cd2054ff000367575cf6cd4468467bf1b284d32aa7",
    ),
    (
        "ff" * 32,
        "d971c01ccc26c94d4abe9bc615d8534f40bdb371ee5abd8ca56a903845f0932d",
        "6ae4e2d53e87f045bc5ac399406b5ca146da575e2750c9a7d7a1421675c3b833",
    ),
    (
        "0b" * 22,
        "7090e5020d29d1e8503257d38580b9be7c5bfacedf09f63c55d242ba9f08a2f1",
        "1c75f6d69ce97216cd4c2a77c5a2c62ed8db8d7f1119586d12f4a9c4dd6e09b2",
    ),
]


@pytest.mark.parametrize(("ledger_key", "identifier", "chain"), KNOWN_SUBKEYS)
def test_subkeys_are_byte_identical_to_the_earlier_hkdf(
    ledger_key: str, identifier: str, chain: str
) -> None:
    assert (identifier, chain) == tuple(k.hex() for k in subkeys(bytes.fromhex(ledger_key)))


@given(
    secret=st.binary(min_size=1, max_size=200),  # past 64 bytes a key is hashed first
    values=st.lists(st.text(max_size=80), max_size=20),
    db_id=st.integers(min_value=1, max_value=10**9),
    resource_id=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_keys_equal_hmac_sha256_under_the_identifier_subkey(
    secret: bytes, values: list[str], db_id: int, resource_id: int | None
) -> None:
    keyer = Keyer(secret)
    identifier, _ = subkeys(secret)
    prefix = message_prefix(db_id, "email", resource_id, None)
    expected = [reference(identifier, prefix, v) for v in values]
    assert keyer.keys(prefix, values) == expected
    assert [keyer.key(db_id, "email", resource_id, None, v) for v in values] == expected


@given(secret=st.binary(min_size=1, max_size=200), value=st.text(max_size=80))
def test_d1_keys_equal_hmac_sha256_under_the_ledger_key(secret: bytes, value: str) -> None:
    """Older ledgers keep their derivation: keys made with the ledger key itself."""
    prefix = message_prefix(7, "phone", None, None)
    assert Keyer(secret, derivation="d1").keys(prefix, [value]) == [
        reference(secret, prefix, value)
    ]


def test_a_64_byte_secret_and_a_65_byte_one_follow_rfc_2104() -> None:
    for size in (63, 64, 65, 128):
        secret = bytes(range(size))
        assert Keyer(secret, derivation="d1").keys("p\x1f", ["a@b.ru"]) == [
            reference(secret, "p\x1f", "a@b.ru")
        ]


def test_the_key_depends_on_every_part_of_the_identity() -> None:
    keyer = Keyer(b"k" * 32)
    base = keyer.key(1, "email", 2, None, "a@b.ru")
    assert base != keyer.key(3, "email", 2, None, "a@b.ru")
    assert base != keyer.key(1, "email", None, None, "a@b.ru")
    assert base != keyer.key(1, "custom", 2, None, "a@b.ru")
    assert base != Keyer(b"j" * 32).key(1, "email", 2, None, "a@b.ru")
    assert base != Keyer(b"k" * 32, derivation="d1").key(1, "email", 2, None, "a@b.ru")
    assert len(base) == KEY_HEX_LENGTH
    int(base, 16)


@given(previous=st.text(alphabet="0123456789abcdef", max_size=64), content=st.binary())
def test_chain_links_equal_hmac_sha256(previous: str, content: bytes) -> None:
    secret = b"chain-secret"
    _, chain = subkeys(secret)
    assert Keyer(secret).chain(previous, content) == chain_reference(chain, previous, content)
    assert Keyer(secret, derivation="d1").chain(previous, content) == chain_reference(
        secret, previous, content
    )


def test_the_two_subkeys_differ_from_each_other_and_from_the_ledger_key() -> None:
    secret = new_ledger_key().encode()
    identifier, chain = subkeys(secret)
    assert len({identifier, chain, secret}) == 3
    assert (32, 32) == (len(identifier), len(chain))
    other_identifier, other_chain = subkeys(new_ledger_key().encode())
    assert identifier != other_identifier and chain != other_chain


def test_new_ledger_keys_are_32_random_bytes() -> None:
    made = {new_ledger_key() for _ in range(50)}
    assert 50 == len(made)
    for key in made:
        assert 32 == len(bytes.fromhex(key))


def test_an_identifier_key_keys_as_its_ledger_key_and_cannot_chain() -> None:
    secret = b"test-ledger-key-0123456789abcdef"
    full = Keyer(secret)
    text = identifier_key_text(secret)
    assert text.startswith(IDKEY_PREFIX) and 64 == len(text) - len(IDKEY_PREFIX)
    assert secret.hex() not in text
    only = keyer_from_text(text, source="ledger key file /k")
    assert (only.derivation, only.fingerprint) == (full.derivation, full.fingerprint)
    prefix = message_prefix(1, "email", None, None)
    assert only.keys(prefix, ["a@b.ru", "c@d.ru"]) == full.keys(prefix, ["a@b.ru", "c@d.ru"])
    assert {Role.IDENTIFIER} == only.roles and set(Role) == full.roles
    only.require(Role.IDENTIFIER)
    with pytest.raises(ConfigError) as info:
        only.chain("0" * 64, b"content")
    assert 78 == info.value.exit_code
    assert "ledger key file /k is an identifier key" in str(info.value)
    with pytest.raises(ConfigError, match="erasure verify needs the full ledger key"):
        only.require(Role.CHAIN, "erasure verify")


def test_a_ledger_key_text_is_a_ledger_key() -> None:
    keyer = keyer_from_text("test-ledger-key-0123456789abcdef")
    assert DERIVATION_VERSION == keyer.derivation and set(Role) == keyer.roles
    assert "d1" == keyer_from_text("test-ledger-key-0123456789abcdef", derivation="d1").derivation


@pytest.mark.parametrize(
    ("text", "derivation", "says"),
    [
        (IDKEY_PREFIX + "ab" * 31, "d2", "must be followed by 64 hex digits"),
        (IDKEY_PREFIX + "zz" * 32, "d2", "must be followed by 64 hex digits"),
        (IDKEY_PREFIX + "ab" * 32, "d1", "derivation d1, which has no separate identifier key"),
        ("test-ledger-key-0123456789abcdef", "d9", "derivation 'd9' is unknown"),
    ],
)
def test_unusable_key_texts_are_refused_with_78(text: str, derivation: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        keyer_from_text(text, derivation=derivation, source="variable K")
    assert 78 == info.value.exit_code
    assert "ab" * 32 not in str(info.value)


# ---------------------------------------------------------------- through the CLI


@pytest.fixture(name="done_job")
def _done_job(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> Path:
    """A job whose run, with the full ledger key, erased user0..user2."""
    sandbox = sandbox_factory(generate_count=5)
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(write_job, sandbox.url)
    assert 0 == e2e.run(job)
    return job


def test_an_identifier_key_answers_lookup_and_validate_but_not_verify_or_run(
    done_job: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compliance staff with the identifier key can ask, but cannot touch the chain."""
    monkeypatch.setenv("ERASURE_LEDGER_KEY", identifier_key_text(LEDGER_KEY.encode()))
    capsys.readouterr()
    assert 0 == cli.main(["lookup", str(done_job), "--email", "user1@example.com"])
    assert "request T1: erased" in capsys.readouterr().out
    assert 0 == cli.main(["validate", str(done_job)])
    assert "pairs 3 = already final in the ledger 3 + to send 0" in capsys.readouterr().out
    for command in (
        ["verify", str(done_job)],
        ["run", str(done_job), "--no-progress", "--log-format", "console"],
    ):
        assert 78 == cli.main(command)
        err = capsys.readouterr().err.strip().splitlines()
        assert [
            "erasure: error: variable ERASURE_LEDGER_KEY is an identifier key "
            "(erasure-idkey-v1:...): it serves lookup, screen and validate only, and "
            f"erasure {command[0]} needs the full ledger key, which can extend the chain"
        ] == err


def test_a_world_readable_key_file_stops_a_run_before_anything(
    done_job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = done_job.parent / "ledger.key"
    key.write_text(LEDGER_KEY + "\n")
    key.chmod(0o644)
    text = done_job.read_text().replace(
        'path = "ledger.sqlite"', 'path = "ledger.sqlite"\nkey_file = "ledger.key"'
    )
    done_job.write_text(text)
    before = len(e2e.events(done_job.parent / "ledger.sqlite"))
    capsys.readouterr()
    assert 78 == cli.main(["run", str(done_job), "--no-progress", "--log-format", "console"])
    err = capsys.readouterr().err
    assert f"ledger key file {key} may be read by others" in err and f"chmod 600 {key}" in err
    assert before == len(e2e.events(done_job.parent / "ledger.sqlite"))
    key.chmod(0o600)
    assert 0 == cli.main(["verify", str(done_job)])


def test_keygen_hands_out_the_identifier_key_of_a_jobs_ledger_key(
    done_job: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keygen --identifier-key` writes what the README tells operators to hand out."""
    out = done_job.parent / "lookup.idkey"
    assert 0 == cli.main(["keygen", "--identifier-key", str(out), "--job", str(done_job)])
    assert f"identifier key: {out} (owner-only" in capsys.readouterr().out
    assert 0o600 == stat.S_IMODE(out.stat().st_mode)
    text = out.read_text().strip()
    assert identifier_key_text(LEDGER_KEY.encode()) == text
    assert LEDGER_KEY not in text
    # never over an existing file
    assert 74 == cli.main(["keygen", "--identifier-key", str(out), "--job", str(done_job)])
    assert text == out.read_text().strip()
    # it answers a lookup, and cannot extend the chain, nor make another identifier key
    monkeypatch.setenv("ERASURE_LEDGER_KEY", text)
    assert 0 == cli.main(["lookup", str(done_job), "--email", "user1@example.com"])
    assert 78 == cli.main(["verify", str(done_job)])
    again = done_job.parent / "again.idkey"
    assert 78 == cli.main(["keygen", "--identifier-key", str(again), "--job", str(done_job)])
    assert not again.exists()


def test_keygen_with_a_new_ledger_key_writes_its_identifier_key(tmp_path: Path) -> None:
    signing, ledger, ident = tmp_path / "r.key", tmp_path / "ledger.key", tmp_path / "id.key"
    argv = ["keygen", "--out", str(signing), "--ledger-key", str(ledger)]
    assert 0 == cli.main([*argv, "--identifier-key", str(ident)])
    secret = ledger.read_text().strip().encode()
    assert identifier_key_text(secret) == ident.read_text().strip()
    assert Keyer(secret).fingerprint == keyer_from_text(ident.read_text().strip()).fingerprint


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "keygen needs --out PATH, --identifier-key PATH, or both"),
        (["--identifier-key", "i"], "--identifier-key needs either --job JOB"),
        (["--out", "o", "--job", "j.toml"], "--job is used with --identifier-key only"),
        (["--ledger-key", "l", "--identifier-key", "i"], "--ledger-key comes with --out"),
    ],
)
def test_keygen_refuses_what_it_cannot_do_with_64(
    argv: list[str],
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert 64 == cli.main(["keygen", *argv])
    assert [f"erasure: error: {says}"] == [
        line[: len("erasure: error: ") + len(says)] for line in capsys.readouterr().err.splitlines()
    ]
    assert [] == list(tmp_path.iterdir())
