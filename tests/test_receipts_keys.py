"""erasure keygen's key pair, and loading keys: modes, refusals, one clear line each."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from erasure.errors import ConfigError, ExitCode, FileMissing, OutputError, SecretMissing
from erasure.receipts import (
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    private_key_from_pem,
)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """An owner-only umask, as on a hardened host: the public key is still 0644."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_an_owner_only_private_key_and_a_public_one(
    tmp_path: Path, strict_umask: None
) -> None:
    path = tmp_path / "receipts.key"
    pair = keygen(path)
    assert (path, tmp_path / "receipts.key.pub") == (pair.private_path, pair.public_path)
    assert 0o600 == _mode(path)
    assert 0o644 == _mode(pair.public_path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS #8
    assert pair.public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")  # SPKI
    private, public = load_private_key(path), load_public_key(pair.public_path)
    assert fingerprint(private.public_key()) == fingerprint(public) == pair.fingerprint
    signature = private.sign(b"data")
    public.verify(signature, b"data")  # the two halves belong together


def test_keygen_refuses_an_existing_path_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "receipts.key"
    path.write_bytes(b"an old key")
    with pytest.raises(OutputError, match=r"receipts\.key exists; keygen never overwrites"):
        keygen(path)
    assert b"an old key" == path.read_bytes()
    assert not (tmp_path / "receipts.key.pub").exists()


def test_keygen_refuses_an_existing_public_path_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "receipts.key"
    (tmp_path / "receipts.key.pub").write_bytes(b"someone's public key")
    with pytest.raises(OutputError, match=r"receipts\.key\.pub exists") as err:
        keygen(path)
    assert ExitCode.IOERR == err.value.exit_code
    assert not path.exists()
    assert b"someone's public key" == (tmp_path / "receipts.key.pub").read_bytes()


def test_keygen_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    """O_EXCL with a dangling link would write where the link points: refused first."""
    path = tmp_path / "receipts.key"
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match="exists"):
        keygen(path)
    assert not (tmp_path / "elsewhere").exists()


def test_keygen_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot be written"):
        keygen(tmp_path / "no" / "such" / "receipts.key")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_private_key_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "receipts.key"
    keygen(path)
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        load_private_key(path)
    assert ExitCode.CONFIG == err.value.exit_code
    assert (
        f"receipts signing key file {path} may be read by others (mode {mode:04o}): a secret "
        f"must be readable by its owner only; fix it with `chmod 600 {path}`"
    ) == str(err.value)


def test_a_read_only_owner_key_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "receipts.key"
    pair = keygen(path)
    path.chmod(0o400)
    key = load_private_key(path)
    # the key loaded is the pair's: what it signs, the public key beside it accepts
    signature = key.sign(b"receipt")
    load_public_key(pair.public_path).verify(signature, b"receipt")
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert key.public_key().public_bytes(*raw) == load_public_key(pair.public_path).public_bytes(
        *raw
    )


def test_missing_keys_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SecretMissing, match=r"does not exist \(make one with erasure keygen\)"):
        load_private_key(tmp_path / "nope.key")
    with pytest.raises(FileMissing, match=r"public key file .*nope\.key\.pub does not exist"):
        load_public_key(tmp_path / "nope.key.pub")


def test_files_that_are_not_ed25519_keys_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a key\n")
    junk.chmod(0o600)
    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key"):
        load_private_key(junk)
    with pytest.raises(ConfigError, match="is not a PEM public key"):
        load_public_key(junk)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match=r"is not an Ed25519 key \(it holds an ECPrivateKey\)"):
        private_key_from_pem(ec_pem, "signing_key_env ERASURE_SIGNING_KEY")
    # a private key given where the public key belongs is refused, not half-read
    path = tmp_path / "receipts.key"
    keygen(path)
    with pytest.raises(ConfigError, match="is not a PEM public key"):
        load_public_key(path)


def test_an_empty_or_folder_signing_key_is_refused_as_any_secret_is(tmp_path: Path) -> None:
    """The signing key is read as every secret is (erasure.files): one line each, 78."""
    empty = tmp_path / "empty.key"
    empty.touch(mode=0o600)
    with pytest.raises(SecretMissing, match=rf"receipts signing key file {empty} is empty"):
        load_private_key(empty)
    folder = tmp_path / "folder.key"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretMissing, match="is a directory"):
        load_private_key(folder)
