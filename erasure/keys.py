"""Keys: what the ledger, the logs and the reports hold instead of identifiers.

A key is HMAC-SHA256, under the identifier subkey, of the identifier's
identity: db_id, matching mode, resource_id, field name and the normalised
value, joined by the ASCII unit separator (which no normalised value
contains). The first 128 bits are kept, as 32 hex characters: ample against
collisions for any number of people, and half the memory of the full digest.
The ledger's chain links are HMAC-SHA256 under the chain subkey.

Derivations, recorded in each ledger's meta table (``derivation``):

``d1`` (ledgers written before 0.2)
    Both subkeys are the ledger key itself. Still computed for those
    ledgers, which keep it for good: their keys and links were made with it.
``d2`` (every new ledger)
    Two subkeys from the ledger key with HKDF-SHA256 (RFC 5869), salt
    ``erasure ledger key``, info ``erasure d2 identifier key`` and
    ``erasure d2 chain key``, 32 bytes each. The identifier subkey alone
    can be handed out as an *identifier key* (:data:`IDKEY_PREFIX` and 64
    hex digits, :func:`identifier_key_text`): it computes keys for
    ``lookup``, ``screen`` and ``validate``, but cannot extend or rewrite
    the chain, so compliance staff can answer "was this person erased?"
    without the power to forge the ledger.

HKDF is ``cryptography``'s (already a dependency, for receipts' Ed25519);
``tests/test_keys.py`` holds it to the RFC's vectors and to the subkeys the
hand-written HKDF of earlier releases derived, byte for byte.

The key fingerprint in the meta table is, for ``d2``, computed from the
identifier subkey, so that a ledger key and the identifier key derived from
it have the same one and either is checked against the ledger.

A ledger key should be 32 random bytes: :func:`new_ledger_key` makes one
(64 hex digits). The rules that turn a raw cell into a normalised value
carry a version too; the ledger refuses a run whose rules, derivation or key
differ (it would otherwise see every identifier as new and send them all
again).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from erasure.errors import ConfigError

NORMALISATION_VERSION = "n2"  # erasure.intake.normalize and .repair rules
# Every normalisation whose ledgers this release reads and extends: n2 only turned
# cells n1 refused into valid ones (erasure.intake.repair), so no n1 key differs.
NORMALISATIONS = ("n1", "n2")
DERIVATION_VERSION = "d2"  # the derivation of new ledgers (see the module's docstring)
DERIVATIONS = ("d1", "d2")  # every derivation this release can compute, oldest first
# The layout of the keyed message, the first field of every message: it has
# not changed since d1, whose name it kept; d2 changed the key, not the message.
MESSAGE_VERSION = "d1"
KEY_HEX_LENGTH = 32
LEDGER_KEY_BYTES = 32  # what new_ledger_key draws, and what we recommend
IDKEY_PREFIX = "erasure-idkey-v1:"  # then the d2 identifier subkey, 64 hex digits
_IDKEY_RE = re.compile(re.escape(IDKEY_PREFIX) + r"([0-9a-fA-F]{64})")
_HKDF_SALT = b"erasure ledger key"
_SEP = "\x1f"
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class Role(enum.StrEnum):
    """What a key may be used for: a closed set."""

    # Compute identifiers' keys: validate, lookup, screen.
    IDENTIFIER = "identifier"
    # Extend and check the chain too: run, verify, archive, receipt.
    CHAIN = "chain"


def new_ledger_key() -> str:
    """A new ledger key: 32 random bytes from the OS, as 64 hex digits."""
    return secrets.token_hex(LEDGER_KEY_BYTES)


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869): ``length`` bytes (at most 8160) from ``ikm``."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 gives 1 to 8160 bytes")
    # loaded here: OpenSSL's bindings cost ~30 ms, and only a key's first use needs them
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # An empty salt is the RFC's default: HashLen zero bytes (cryptography's salt=None).
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info)
    return hkdf.derive(ikm)


def subkeys(ledger_key: bytes) -> tuple[bytes, bytes]:
    """The d2 (identifier, chain) subkeys of a ledger key, 32 bytes each."""
    return (
        hkdf_sha256(ledger_key, salt=_HKDF_SALT, info=b"erasure d2 identifier key"),
        hkdf_sha256(ledger_key, salt=_HKDF_SALT, info=b"erasure d2 chain key"),
    )


def identifier_key_text(ledger_key: bytes) -> str:
    """The identifier key of a ledger key, as written to a file (d2 ledgers)."""
    return IDKEY_PREFIX + subkeys(ledger_key)[0].hex()


def is_identifier_key(text: str) -> bool:
    """Whether ``text`` looks like an identifier key (however well formed)."""
    return text.startswith(IDKEY_PREFIX)


def keyer_from_text(
    text: str, *, derivation: str = DERIVATION_VERSION, source: str = "the ledger key"
) -> Keyer:
    """A :class:`Keyer` from a key source's text: a ledger key or an identifier key.

    ``derivation`` is the ledger's (or :data:`DERIVATION_VERSION` for a new
    one); ``source`` names where the text came from, for messages. Raises
    :class:`ConfigError` (78) for a malformed identifier key, or one given
    for a ledger whose derivation has no identifier subkey (``d1``).
    """
    if not is_identifier_key(text):
        return Keyer(text.encode(), derivation=derivation, source=source)
    match = _IDKEY_RE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"{source} begins like an identifier key but is not one: "
            f"{IDKEY_PREFIX} must be followed by 64 hex digits"
        )
    if derivation != "d2":
        raise ConfigError(
            f"{source} is an identifier key ({IDKEY_PREFIX}...), but this ledger uses "
            f"derivation {derivation}, which has no separate identifier key: "
            "set the full ledger key"
        )
    return Keyer.identifier_only(bytes.fromhex(match.group(1)), source=source)


def message_prefix(
    db_id: int, matching: str, resource_id: int | None, field_name: str | None
) -> str:
    """The part of the keyed message shared by every value of one column."""
    rid = "" if resource_id is None else str(resource_id)
    return _SEP.join((MESSAGE_VERSION, str(db_id), matching, rid, field_name or "")) + _SEP


def _states(secret: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's inner and outer states after the padded key (RFC 2104)."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(secret).digest() if len(secret) > block else secret).ljust(
        block, b"\0"
    )
    return hashlib.sha256(padded.translate(_IPAD)), hashlib.sha256(padded.translate(_OPAD))


class Keyer:
    """Computes keys and chain links fast: HMAC spelled out over two SHA-256 states.

    The inner state (key XOR ipad, then the column's message prefix) and the
    outer one (key XOR opad) are hashed once; each value then costs two
    state copies and two short updates. That is about 40 % less than
    copying an ``hmac.HMAC`` object per value, whose copy duplicates
    OpenSSL's whole HMAC context. ``tests/test_keys.py`` holds the result to
    :func:`hmac.new`.

    ``Keyer(ledger_key)`` serves a new ledger (:data:`DERIVATION_VERSION`);
    ``derivation="d1"`` an older one; :meth:`identifier_only` an identifier
    key, whose :meth:`chain` refuses (78).
    """

    derivation: str
    roles: frozenset[Role]
    fingerprint: str  # 16 hex digits, recorded in the ledger's meta table
    source: str

    def __init__(
        self,
        secret: bytes,
        *,
        derivation: str = DERIVATION_VERSION,
        source: str = "the ledger key",
    ) -> None:
        if derivation == "d1":
            identifier, chain = secret, secret
            fingerprint = _fingerprint(secret, b"erasure ledger key fingerprint")
        elif derivation == "d2":
            identifier, chain = subkeys(secret)
            fingerprint = _fingerprint(identifier, b"erasure identifier key fingerprint")
        else:
            raise ConfigError(
                f"ledger key derivation {derivation!r} is unknown to this erasure, which "
                f"knows {', '.join(DERIVATIONS)}: use the erasure version that wrote the ledger"
            )
        self._setup(derivation, identifier, chain, fingerprint, source)

    @classmethod
    def identifier_only(cls, subkey: bytes, *, source: str = "the identifier key") -> Keyer:
        """A keyer from a d2 identifier subkey: keys, but no chain links."""
        keyer = cls.__new__(cls)
        fingerprint = _fingerprint(subkey, b"erasure identifier key fingerprint")
        keyer._setup("d2", subkey, None, fingerprint, source)
        return keyer

    def _setup(
        self,
        derivation: str,
        identifier: bytes,
        chain: bytes | None,
        fingerprint: str,
        source: str,
    ) -> None:
        self.derivation = derivation
        self.fingerprint = fingerprint
        self.source = source
        self._inner, self._outer = _states(identifier)
        self._chain_states = None if chain is None else _states(chain)
        self.roles = frozenset(Role) if chain is not None else frozenset({Role.IDENTIFIER})

    def require(self, role: Role, command: str = "this command") -> None:
        """Raise :class:`ConfigError` (78) unless this key may serve ``role``."""
        if role not in self.roles:
            raise ConfigError(
                f"{self.source} is an identifier key ({IDKEY_PREFIX}...): it serves "
                f"lookup, screen and validate only, and {command} needs the full "
                "ledger key, which can extend the chain"
            )

    def key(
        self,
        db_id: int,
        matching: str,
        resource_id: int | None,
        field_name: str | None,
        value: str,
    ) -> str:
        """The key of one normalised identifier."""
        return self.keys(message_prefix(db_id, matching, resource_id, field_name), [value])[0]

    def keys(self, prefix: str, values: Iterable[str]) -> list[str]:
        """Keys of many normalised values sharing one :func:`message_prefix`."""
        inner = self._inner.copy()
        inner.update(prefix.encode())
        copy_inner = inner.copy
        copy_outer = self._outer.copy
        out: list[str] = []
        append = out.append
        for value in values:
            h = copy_inner()
            h.update(value.encode())
            o = copy_outer()
            o.update(h.digest())
            append(o.hexdigest()[:KEY_HEX_LENGTH])
        return out

    def chain(self, previous: str, content: bytes) -> str:
        """The ledger's chain link: HMAC over the previous link and this content."""
        if self._chain_states is None:
            self.require(Role.CHAIN, "the ledger's chain")
            raise AssertionError("unreachable")  # pragma: no cover
        inner, outer = self._chain_states
        h = inner.copy()
        h.update(b"chain\x1f" + previous.encode() + b"\x1f" + content)
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()


def _fingerprint(secret: bytes, label: bytes) -> str:
    return hmac.new(secret, label, hashlib.sha256).hexdigest()[:16]
