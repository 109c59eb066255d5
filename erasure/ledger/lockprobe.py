"""Whether a run holds a ledger's lock now, asked without taking it.

The writer takes the lock through ``filelock`` (erasure.ledger.store), whose
Unix lock is ``flock`` on ``LEDGER.lock``. This probe asks the same lock by
hand, on purpose: filelock can only acquire, and acquiring opens the file
for writing, creating it when missing. ``status`` must write nothing and
works for a group member who may only read (``[ledger] group``). A shared,
non-blocking ``flock`` on the existing file is refused exactly while a
writer holds it, and needs only read access.
"""

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
