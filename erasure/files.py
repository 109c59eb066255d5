"""Files the tool writes, created with their final mode; secrets others can read refused.

Every file the tool writes (the ledger and its companions, archives,
reports, receipts, rejects and screened files) is created owner-only
(``0600``), or ``0640`` and owned by ``[ledger] group`` when the job names
one (:class:`Perms`). The mode is given to ``open(2)`` itself, so that no
moment exists in which the file is readable by others; nothing is chmodded
afterwards. The umask can still take bits away, never add them: under
``umask 077`` a group's files come out ``0600``.

Three ways in:

- :func:`open_new`: a new file (``O_CREAT | O_EXCL``); an existing one is
  an error, never truncated or re-moded.
- :func:`atomic_write`: a temporary file beside the destination, created
  with the mode, written by the caller (by path: polars, xlsxwriter) and
  renamed into place, so that a reader never sees half a file and an
  existing file is replaced by one with the right mode.
- :func:`write_secret`: a new key file, always owner-only.
- :func:`precreate`: an empty file made before another library opens the
  path (SQLite keeps an existing file's mode and gives its ``-wal`` and
  ``-shm`` files the database file's mode; filelock's lock file).

And two ways in for files from outside: :func:`open_regular` opens an
input or a receipt only when it is a regular file (a FIFO, ``/dev/zero``
or a socket is refused at once, never waited on); :func:`read_secret`
reads a key or token file and refuses it, as ssh refuses a private key,
when others may read it.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from erasure.errors import ConfigError, FileMissing, InputUnusable, SecretMissing

OWNER_ONLY_MODE = 0o600
GROUP_MODE = 0o640


@dataclass(frozen=True, slots=True)
class Perms:
    """Who may read a file the tool writes: its mode and, for a group, its gid."""

    mode: int = OWNER_ONLY_MODE
    gid: int | None = None  # None: the creating process's group, untouched
    group: str | None = None  # the group's name, for messages

    @classmethod
    def for_group(cls, name: str | None) -> Perms:
        """``0640`` for the group called ``name``; owner-only when ``name`` is None.

        Raises :class:`ConfigError` (78) naming a group this system does not
        know, or one this user is not a member of (only a member, or root, may
        give a file to a group).
        """
        if name is None:
            return OWNER_ONLY
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            raise ConfigError(
                f"job file: ledger.group {name!r} is not a group on this system"
            ) from None
        if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
            raise ConfigError(
                f"job file: ledger.group {name!r}: this user is not a member of it, "
                "so files cannot be given to it"
            )
        return cls(mode=GROUP_MODE, gid=gid, group=name)

    def describe(self) -> str:
        """``0600`` or ``0640 (group NAME)``, for messages and docs."""
        return f"{self.mode:04o}" + (f" (group {self.group})" if self.group else "")


OWNER_ONLY = Perms()


def _create(path: Path, perms: Perms, flags: int) -> int:
    """Create ``path`` exclusively with ``perms``; return the open descriptor."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), perms.mode)
    if perms.gid is not None:
        try:
            # The group, not the mode, and while the file is still empty:
            # Perms.for_group has checked that this user may give files to it.
            os.fchown(fd, -1, perms.gid)
        except OSError:
            os.close(fd)
            with suppress(OSError):
                os.unlink(path)
            raise
    return fd


def open_new(path: Path, perms: Perms = OWNER_ONLY) -> BinaryIO:
    """Open a NEW file for binary writing, created with ``perms``.

    Raises :class:`FileExistsError` when ``path`` exists (nothing is
    truncated), or another :class:`OSError` when it cannot be created.
    """
    fd = _create(path, perms, os.O_WRONLY)
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def atomic_write(path: Path, perms: Perms = OWNER_ONLY) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, created empty with ``perms``.

    The caller writes the temporary file by its path (truncating keeps its
    mode); on a normal exit it is renamed onto ``path``, replacing any file
    there; on an exception it is removed and ``path`` is left as it was.
    Raises :class:`OSError` when the temporary file cannot be created or
    renamed.
    """
    tmp = _temporary(path, perms)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _temporary(path: Path, perms: Perms) -> Path:
    """Create an empty, hidden, uniquely named file in ``path``'s folder."""
    for attempt in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{attempt}.tmp")
        try:
            os.close(_create(tmp, perms, os.O_WRONLY))
        except FileExistsError:
            continue  # a leftover of a killed process, or another thread's
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


def precreate(path: Path, perms: Perms = OWNER_ONLY) -> bool:
    """Create ``path`` empty with ``perms`` unless it exists; True when created.

    An existing file is left exactly as it is: an older ledger keeps its
    mode until its owner changes it. An empty file is a valid, empty SQLite
    database, which SQLite then fills without touching the mode.
    """
    try:
        os.close(_create(path, perms, os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def write_secret(path: Path, text: str) -> None:
    """Write a NEW secret file (a ledger key, an identifier key), owner-only whatever the group.

    One line, ``text`` and a newline. Raises :class:`FileExistsError` when
    ``path`` exists (a key is never overwritten: the ledger it keys would
    be lost), or another :class:`OSError`; a half-written file is removed.
    """
    with open_new(path) as f:
        try:
            f.write(text.encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            with suppress(OSError):
                path.unlink()
            raise


def read_secret(path: Path, label: str, perms: Perms = OWNER_ONLY) -> str:
    """Read a secret file (a key or a token) as text, its trailing newline stripped.

    The checks of :func:`read_secret_bytes`; refused too when it is not
    UTF-8 text.
    """
    raw = read_secret_bytes(path, label, perms)
    try:
        value = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise SecretMissing(f"{label} {path} is not UTF-8 text") from None
    if not value:
        raise SecretMissing(f"{label} {path} is empty")
    return value


def read_secret_bytes(
    path: Path, label: str, perms: Perms = OWNER_ONLY, *, missing_hint: str = ""
) -> bytes:
    """Read a secret file's bytes (a signing key's PEM, a key, a token).

    ``label`` names it in messages ("ledger key file"), ``missing_hint``
    follows "does not exist" (" (make one with erasure keygen)"). The file
    is refused (:class:`SecretMissing`, 78) when it is missing, unreadable,
    empty, or readable by others: any group or other bit with owner-only
    ``perms``, any other bit with a group's (``0640`` is then fine). The
    check is made on the opened file, so that it cannot be swapped between
    the check and the read.
    """
    try:
        with path.open("rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            _refuse_open_to_others(path, label, mode, perms)
            raw = f.read()
    except FileNotFoundError:
        raise SecretMissing(f"{label} {path} does not exist{missing_hint}") from None
    except IsADirectoryError:
        raise SecretMissing(f"{label} {path} is a directory") from None
    except OSError as exc:
        raise SecretMissing(f"{label} {path} cannot be read: {exc.strerror or exc}") from None
    if not raw:
        raise SecretMissing(f"{label} {path} is empty")
    return raw


def refuse_writable_by_others(path: Path, label: str, mode: int) -> None:
    """Refuse (:class:`ConfigError`, 78) a file the group or others may write.

    A job file says where the token goes (``base_url``, ``ca_bundle``):
    whoever may edit it receives the token.
    """
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            f"{label} {path} may be written by others (mode {stat.S_IMODE(mode):04o}): "
            f"whoever edits it could send the token elsewhere; fix it with `chmod go-w {path}`"
        )


def _refuse_open_to_others(path: Path, label: str, mode: int, perms: Perms) -> None:
    too_open = stat.S_IRWXO if perms.gid is not None else stat.S_IRWXG | stat.S_IRWXO
    if mode & too_open:
        fix = f"chmod 600 {path}"
        raise SecretMissing(
            f"{label} {path} may be read by others (mode {mode:04o}): "
            f"a secret must be readable by its owner only; fix it with `{fix}`"
        )
    if mode & (stat.S_IWGRP | stat.S_IXGRP):  # a group's key: read, never written
        raise SecretMissing(
            f"{label} {path} may be written by the group (mode {mode:04o}): "
            f"fix it with `chmod 640 {path}`"
        )


def open_regular(path: Path, label: str) -> BinaryIO:
    """Open ``path`` for binary reading when it is a regular file (an input, a receipt).

    Opened without blocking (a FIFO with no writer would wait for ever), then
    checked on the open descriptor: a FIFO, a device such as ``/dev/zero``
    (whose reading never ends), a socket or a folder is refused with
    :class:`InputUnusable` (65). ``label`` names the file in messages ("input
    file"). Missing: :class:`FileMissing` (66).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileMissing(f"{label} {path} does not exist") from None
    except IsADirectoryError:
        raise FileMissing(f"{label} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InputUnusable(f"{label} {path} cannot be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileMissing(f"{label} {path} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputUnusable(
                f"{label} {path} is not a regular file (a pipe, a device or a socket): "
                "save it to a file first"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def readonly_uri(path: Path) -> str:
    """The URI of a read-only SQLite connection to the ledger at ``path``.

    A reader who is not the ledger's owner (a ``[ledger] group`` member)
    never lets SQLite create a ``-wal`` or ``-shm``: they would be the
    member's and stop the owner's next run. A WAL ledger with no ``-wal``
    (no writer has it open) is opened ``immutable`` then; see
    :mod:`erasure.ledger.safety`. Here, not in the ledger package, so that
    the job module can use it without loading polars.
    """
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return uri  # the caller says what is wrong
    if owner == os.geteuid() or Path(str(path) + "-wal").exists():
        return uri
    if _wal_header(path):
        # no writer has it open: nothing changes under the reader, and an
        # immutable connection creates no -shm (which would be this user's)
        return uri + "&immutable=1"
    return uri


def _wal_header(path: Path) -> bool:
    """Whether the database header says WAL mode (file format versions 2)."""
    try:
        with path.open("rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[18] == 2 and head[19] == 2
