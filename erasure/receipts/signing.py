"""Ed25519 keys for receipts: make a pair, load them, sign, fingerprint.

``keygen(path)`` writes the private key at PATH (PEM, PKCS #8, unencrypted,
owner-only 0600) and the public key at PATH.pub (PEM SubjectPublicKeyInfo,
0644: it is meant to be handed out). Both are created with ``O_EXCL``, so an
existing file is never overwritten, not even by a race.

A private key that the group or others may read is refused, as ssh refuses
such keys: whoever can read it can sign receipts in the issuer's name.

The fingerprint of a public key is the SHA-256 of its DER
SubjectPublicKeyInfo, in hex: what ``openssl pkey -pubin -in KEY.pub
-outform DER | sha256sum`` prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from erasure.errors import ConfigError, FileMissing, OutputError
from erasure.files import read_secret_bytes

__all__ = [
    "ALGORITHM",
    "KeyPair",
    "fingerprint",
    "keygen",
    "load_private_key",
    "load_public_key",
    "private_key_from_pem",
    "public_key_from_pem",
    "sign_bytes",
    "verify_bytes",
]

ALGORITHM = "Ed25519"
SIGNATURE_BYTES = 64  # an Ed25519 signature
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class KeyPair:
    """Where :func:`keygen` wrote the two keys, and the public key's fingerprint."""

    private_path: Path
    public_path: Path
    fingerprint: str  # SHA-256 of the DER public key, 64 hex characters


def public_path_of(path: Path) -> Path:
    """PATH.pub: where the public key of the private key at PATH lives."""
    return path.with_name(path.name + ".pub")


def keygen(path: Path) -> KeyPair:
    """A new Ed25519 key pair at PATH (0600) and PATH.pub (0644).

    Raises :class:`OutputError` (74) when either file exists or cannot be
    written; nothing is left behind then.
    """
    public = public_path_of(path)
    for target in (path, public):
        if target.exists() or target.is_symlink():
            raise OutputError(f"{target} exists; keygen never overwrites a key: choose a new path")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create(path, private_pem, _PRIVATE_MODE)
    try:
        _create(public, public_pem, _PUBLIC_MODE)
    except OutputError:
        with contextlib.suppress(OSError):
            path.unlink()  # half a pair is no use, and the private half is a secret
        raise
    return KeyPair(path, public, fingerprint(key.public_key()))


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise OutputError(
            f"{path} exists; keygen never overwrites a key: choose a new path"
        ) from None
    except OSError as exc:
        raise OutputError(f"{path} cannot be written: {exc.strerror or exc}") from None
    try:
        # the umask may have taken bits from the public key's mode; the private
        # key's mode is set again in case the file system ignored it at open
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise OutputError(f"{path} cannot be written: {exc.strerror or exc}") from None
    os.close(fd)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at PATH, refused (78) when the group or others may read it.

    Read as every secret is (:func:`erasure.files.read_secret_bytes`):
    owner-only, checked on the opened file.
    """
    label = "receipts signing key file"
    data = read_secret_bytes(path, label, missing_hint=" (make one with erasure keygen)")
    return private_key_from_pem(data, f"{label} {path}")


def private_key_from_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS #8); ``source`` names where it came from."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{source} is not an unencrypted PEM private key (make one with erasure keygen)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{source} is not an Ed25519 key (it holds an {type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The public key at PATH (PEM SubjectPublicKeyInfo), as ``keygen`` wrote it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileMissing(f"public key file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"public key file {path} cannot be read: {exc.strerror or exc}") from None
    return public_key_from_pem(data, f"public key file {path}")


def public_key_from_pem(data: bytes, source: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ``source`` names where it came from."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{source} is not a PEM public key (the .pub file erasure keygen wrote)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source} is not an Ed25519 key (it holds an {type(key).__name__})")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, 64 hex characters."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign_bytes(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data``."""
    return key.sign(data)


def verify_bytes(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature of exactly ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
