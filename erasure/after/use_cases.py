"""The use cases after the delete: keygen, receipt, check-receipt, screen (issue 15).

Like :mod:`erasure.app`, each takes a loaded :class:`~erasure.job.Job` (or
paths) and plain options, returns a frozen result that :mod:`erasure.cli`
prints, and loads the modules it uses only when it runs. ``erasure sweep``
is :func:`erasure.after.sweep.sweep` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.errors import OutputError
from erasure.outputs import check_output

if TYPE_CHECKING:
    from erasure.after.screen import ScreenResult
    from erasure.job import Job
    from erasure.receipts import CheckResult, SignedReceipt


@dataclass(frozen=True, slots=True)
class KeygenResult:
    """``erasure keygen``: the signing key pair, and the ledger key file if one was asked for."""

    private_path: Path
    public_path: Path
    fingerprint: str  # SHA-256 of the public key (DER), hex
    ledger_key: Path | None = None


def keygen(out: Path, ledger_key: Path | None = None) -> KeygenResult:
    """A new Ed25519 signing key at ``out`` (and ``out``.pub); a new ledger key file too."""
    from erasure.files import write_secret
    from erasure.keys import new_ledger_key
    from erasure.receipts import keygen as make_pair

    if ledger_key is not None and (ledger_key.exists() or ledger_key.is_symlink()):
        raise OutputError(f"{ledger_key} exists; keygen never overwrites a key: choose a new path")
    pair = make_pair(out)
    if ledger_key is not None:
        try:
            write_secret(ledger_key, new_ledger_key())
        except OSError as exc:
            raise OutputError(f"{ledger_key} cannot be written: {exc.strerror or exc}") from None
    return KeygenResult(pair.private_path, pair.public_path, pair.fingerprint, ledger_key)


def receipt(
    job: Job, request_id: str, out: Path, *, archives: tuple[Path, ...] = ()
) -> SignedReceipt:
    """Sign one request's receipt (the chain checked first) and write it; the SignedReceipt.

    ``archives``: the archive files holding the ledger's earlier events.
    """
    from erasure.after import receipt as receipt_mod

    check_output(out, job)
    signed = receipt_mod.build(job, request_id, archives=archives)
    receipt_mod.write(signed, out, job.perms)
    return signed


def check_receipt(
    path: Path, public_key: Path, job: Job | None = None, *, archives: tuple[Path, ...] = ()
) -> CheckResult:
    """Check a receipt's signature and, with ``job``, its ledger (and ``archives``)."""
    from erasure.after import receipt as receipt_mod

    return receipt_mod.check_file(path, public_key, job, archives=archives)


def screen(
    job: Job, source: Path, out: Path, columns: Mapping[str, str] | None = None
) -> ScreenResult:
    """Copy ``source`` to ``out`` less the rows naming a finished erasure; a ScreenResult.

    ``columns`` (kind -> header, from ``--column``) wins over ``[screen] columns``.
    """
    from erasure.after import screen as screen_mod

    check_output(out, job, inputs=[source])
    return screen_mod.screen(job, source, out, columns)
