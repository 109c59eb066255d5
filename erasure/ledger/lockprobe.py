"""Whether a run holds a ledger's lock now, asked without taking it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["running"]


def running(ledger_path: Path) -> bool:
    """Whether a run holds the ledger's lock now (a shared lock is refused while it does)."""
    lock = Path(str(ledger_path) + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
