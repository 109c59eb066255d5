"""Where an output may go: never over what the tool reads or keeps.

Every file a command writes (``report --out`` and the HTML report's
overflow file ``OUT.rows.csv``, ``--rejects``, receipts, plans, archives,
acts, screened files) passes :func:`check_output` first. It refuses (64,
nothing written) a path that is, or resolves to, one of the job's own
files: the job file, the input (the job's and ``--input``), the ledger
and its companions (``-wal``, ``-shm``, ``-journal``, ``.lock``), and the
secret files the job names (token, ledger key, signing key). It refuses
too an output whose folder does not exist (the contract's 64: "an output
folder that does not exist"), before any work is done.

Pure apart from :func:`os.path.realpath` and ``stat``: the comparison is
by the path as the kernel would resolve it, and by inode for a file that
exists (a hard link to the input is the input).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.errors import UsageError

if TYPE_CHECKING:
    from erasure.job import Job

LEDGER_COMPANIONS = ("", "-wal", "-shm", "-journal", ".lock")


def ledger_files(ledger: Path) -> list[Path]:
    """The ledger and every file SQLite and the lock keep beside it."""
    return [Path(str(ledger) + suffix) for suffix in LEDGER_COMPANIONS]


def protected(job: Job | None, extra: Iterable[Path | None] = ()) -> Iterator[tuple[Path, str]]:
    """Each file an output must never be, with the words that name it."""
    if job is not None:
        yield job.path, "the job file"
        if job.input.path is not None:
            yield job.input.path, "the input file"
        for path in ledger_files(job.ledger.path):
            yield path, "the ledger" if path == job.ledger.path else "a file of the ledger"
        receipts = job.receipts
        signing = receipts.signing_key_file if receipts is not None else None
        for secret in (job.api.token_file, job.ledger.key_file, signing):
            if secret is not None:
                yield secret, "a secret the job names"
    for given in extra:
        if given is not None:
            yield given, "the input file"


def check_output(
    out: Path,
    job: Job | None,
    *,
    flag: str = "--out",
    inputs: Iterable[Path | None] = (),
    folder_must_exist: bool = True,
) -> None:
    """Refuse (:class:`UsageError`, 64) an output that would overwrite what the tool reads.

    ``inputs`` are further files the command reads (``--input``,
    ``--export``). Also refused: an output whose folder does not exist
    (unless ``folder_must_exist`` is False: ``--rejects`` makes its folder).
    """
    target = _real(out)
    try:
        target_stat: os.stat_result | None = os.stat(out)
    except OSError:
        target_stat = None
    for path, what in protected(job, inputs):
        if _real(path) == target or (target_stat is not None and _same(path, target_stat)):
            raise UsageError(
                f"{flag} {out} is {what}: an output never overwrites it; choose another path"
            )
    folder = out.absolute().parent
    if folder_must_exist and not folder.is_dir():
        raise UsageError(f"{flag} {out}: the folder {folder} does not exist; create it first")


def _real(path: Path) -> str:
    return os.path.realpath(path.expanduser())


def _same(path: Path, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
