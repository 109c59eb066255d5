"""``[suppress]`` and ``[notify]``: the job sections for keeping people gone and telling others.

Declared with the rest of the job file's schema, in :mod:`erasure.job.keep`;
named here too for the commands after the delete.
"""

from __future__ import annotations

from erasure.job.keep import (
    DEFAULT_NOTIFY_SECRET_ENV,
    SUPPRESS_BATCH,
    NoticeFormat,
    Notify,
    Suppress,
)

__all__ = ["DEFAULT_NOTIFY_SECRET_ENV", "SUPPRESS_BATCH", "NoticeFormat", "Notify", "Suppress"]
