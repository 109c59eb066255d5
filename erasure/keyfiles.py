"""``erasure keygen --identifier-key``: hand out the key that answers "was this person erased?".

An identifier key (:data:`erasure.keys.IDKEY_PREFIX` and 64 hex digits) is
the ``d2`` identifier subkey of a ledger key: ``lookup``, ``screen`` and
``validate`` work with it, and it cannot extend or rewrite the chain. It is
derived from a job's ledger key (``key_env``/``key_file``), or from the new
ledger key ``keygen --ledger-key`` has just written, and written owner-only
to a new file (never over an existing one).
"""

from __future__ import annotations

from pathlib import Path

from erasure import keys
from erasure.errors import ConfigError, OutputError
from erasure.files import read_secret, write_secret
from erasure.job import Job

__all__ = ["for_job", "for_ledger_key_file"]


def for_job(job: Job, out: Path) -> Path:
    """Write the identifier key of ``job``'s ledger key to ``out``; ``out``.

    Raises :class:`ConfigError` (78) when the job's key is itself an
    identifier key, or its ledger keeps the ``d1`` derivation (which has no
    separate identifier key); :class:`OutputError` (74) when ``out`` exists
    or cannot be written.
    """
    keyer = job.keyer(keys.Role.CHAIN, command="keygen --identifier-key")
    if keyer.derivation != "d2":
        raise ConfigError(
            f"ledger {job.ledger.path} uses derivation {keyer.derivation}, which has no "
            "separate identifier key: hand out the ledger key itself, or start a new ledger"
        )
    return _write(out, keys.identifier_key_text(job.ledger_key()))


def for_ledger_key_file(ledger_key: Path, out: Path) -> Path:
    """Write the identifier key of the (new) ledger key in file ``ledger_key`` to ``out``."""
    secret = read_secret(ledger_key, "ledger key file").encode()
    return _write(out, keys.identifier_key_text(secret))


def _write(out: Path, text: str) -> Path:
    if out.exists() or out.is_symlink():
        raise OutputError(f"{out} exists; keygen never overwrites a key: choose a new path")
    try:
        write_secret(out, text)
    except OSError as exc:
        raise OutputError(f"{out} cannot be written: {exc.strerror or exc}") from None
    return out
