"""``erasure migrate``: give a ledger written by an older release this release's derived state.

Opening a ledger for writing migrates it (:class:`erasure.ledger.Ledger`,
:func:`erasure.ledger.migrate.migrate`); this use case opens it for that
alone, and says whether it was needed.
"""

from __future__ import annotations

from contextlib import closing

from erasure.errors import FileMissing
from erasure.job import Job
from erasure.keys import Role
from erasure.ledger import state
from erasure.ledger.read import open_events
from erasure.ledger.store import Ledger

__all__ = ["migrate_job"]


def migrate_job(job: Job, *, command: str = "erasure migrate") -> bool:
    """Open the job's ledger for writing (which migrates it); whether it needed migrating.

    66 when there is no ledger, 75 when a run holds it. ``command`` names the
    command that needs the ledger key, should it be missing.
    """
    path = job.ledger.path
    if not path.exists():
        raise FileMissing(f"ledger {path} does not exist (no run has written it yet)")
    with closing(open_events(path)) as db:
        current = state.has_state(db)
    if current:
        return False
    keyer = job.keyer(Role.CHAIN, command=command)
    with Ledger(path, keyer, perms=job.perms, progress=True):
        pass
    return True
