"""Whether a ledger path is safe to write into, and its folders made safely.

A ledger is written only where nobody else can swap it or plant a file
beside it (the contract's "Hostile files"):

- the ledger path, its companions (``-wal``, ``-shm``, ``-journal``) and
  its lock are never symbolic links (a link to another application's
  SQLite file would get erasure's tables; a dangling one would be created
  with SQLite's mode, not ours);
- each of them that exists is a regular file owned by this user and not
  writable by the group or others (one pre-created by another user in a
  shared folder is never adopted);
- the folder holding them is owned by this user (or root) and not
  writable by others;
- an existing SQLite file that is not an erasure ledger is never written
  into (checked by :class:`erasure.ledger.store.Ledger` once it has the
  file open: :func:`refuse_foreign`).

Every refusal is :class:`~erasure.errors.UnsafeLedger` (78), naming the
file and the fix. Readers (status, report, lookup, verify) check only the
symbolic links and the file's type (:func:`check_readable`): a group
member reads files its owner made.

Folders the tool creates for a ledger are ``0700`` (``0750`` with
``[ledger] group``, given to the group), whatever the umask:
:func:`make_folders`.

A group member reads without leaving anything behind
(:func:`erasure.files.readonly_uri`):
while a run holds the ledger its ``-wal`` and ``-shm`` exist (the owner's,
``0640``) and SQLite reads them read-only; between runs a group ledger is
left in rollback mode by its writer (:func:`leave_for_readers`), which a
read-only connection reads without creating a file. A reader who is not the
ledger's owner never lets SQLite create a ``-wal`` or ``-shm`` (in a
group-writable folder they would be the member's, and stop the owner's next
run): a WAL ledger with no ``-wal`` is then opened ``immutable``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from erasure.errors import UnsafeLedger
from erasure.files import Perms

COMPANIONS = ("-wal", "-shm", "-journal", ".lock", ".decisions", ".decisions-wal", ".decisions-shm")
FOLDER_MODE = 0o700
GROUP_FOLDER_MODE = 0o750


def companions(path: Path) -> list[Path]:
    """The files SQLite and the lock keep beside the ledger."""
    return [Path(str(path) + suffix) for suffix in COMPANIONS]


def check_writable(path: Path) -> None:
    """Refuse (78) a ledger path a run must not write: see the module's rules."""
    uid = os.geteuid()
    folder = path.absolute().parent
    try:
        fst = folder.stat()
    except FileNotFoundError:
        fst = None  # make_folders creates it, owner-only
    if fst is not None:
        if fst.st_uid not in (uid, 0):
            raise UnsafeLedger(
                f"ledger folder {folder} belongs to another user (uid {fst.st_uid}): "
                "put the ledger in a folder you own"
            )
        if fst.st_mode & stat.S_IWOTH and not fst.st_mode & stat.S_ISVTX:
            raise UnsafeLedger(
                f"ledger folder {folder} may be written by anyone (mode "
                f"{stat.S_IMODE(fst.st_mode):04o}): anyone could replace the ledger; "
                f"fix it with `chmod o-w {folder}` or use another folder"
            )
    for file in (path, *companions(path)):
        _check_file(file, uid, sticky=fst is not None and bool(fst.st_mode & stat.S_IWOTH))


def _check_file(file: Path, uid: int, *, sticky: bool) -> None:
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeLedger(
            f"ledger file {file} is a symbolic link: a ledger is never written through a "
            "link; set [ledger] path to the real file (or remove the link)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeLedger(
            f"ledger file {file} is not a regular file: remove it or move the ledger"
        )
    if st.st_uid != uid:
        raise UnsafeLedger(
            f"ledger file {file} belongs to another user (uid {st.st_uid}): erasure never "
            "adopts a file someone else made; remove it, or run as its owner"
            + (" (the folder is shared)" if sticky else "")
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeLedger(
            f"ledger file {file} may be written by others (mode {stat.S_IMODE(st.st_mode):04o}):"
            f" fix it with `chmod go-w {file}`"
        )


def check_readable(path: Path) -> None:
    """Refuse (78) reading a ledger through a symbolic link or from a non-regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # the caller says it does not exist
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeLedger(
            f"ledger file {path} is a symbolic link: set [ledger] path to the real file"
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeLedger(f"ledger file {path} is not a regular file")


def refuse_foreign(db: sqlite3.Connection, path: Path) -> None:
    """Refuse (78) an SQLite file that holds tables but not an erasure ledger's.

    An empty file (just made, or a first run stopped before its schema
    was committed) is fine: the schema is created in it.
    """
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if names and not {"events", "meta"} <= names:
        raise UnsafeLedger(
            f"ledger {path} is an SQLite file of something else (tables "
            f"{', '.join(sorted(names)[:5])}): erasure never writes into it; "
            "set [ledger] path to a new file"
        )


def make_folders(folder: Path, perms: Perms) -> None:
    """Create ``folder`` and its missing parents, each ``0700`` (``0750`` for a group).

    The mode is set after ``mkdir`` (the umask cannot widen or narrow it);
    a group's folders are given to the group so that members can reach the
    ledger. Existing folders are left as they are.
    """
    missing: list[Path] = []
    current = folder.absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    mode = GROUP_FOLDER_MODE if perms.gid is not None else FOLDER_MODE
    for made in reversed(missing):
        try:
            made.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile: left as it is
        if perms.gid is not None:
            os.chown(made, -1, perms.gid)
        os.chmod(made, mode)


def leave_for_readers(db: sqlite3.Connection, perms: Perms) -> None:
    """Before the writer closes a group's ledger: rollback mode, so members read it as it is.

    A read-only connection to a WAL ledger whose ``-wal`` is gone must create
    a ``-shm``, which a member cannot (or must not) do. In rollback mode it
    creates nothing. The next writer turns WAL on again. Best effort: a
    reader holding the ledger at this moment keeps it in WAL mode, which
    :func:`erasure.files.readonly_uri` copes with.
    """
    if perms.gid is None:
        return
    try:
        db.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error:
        pass
