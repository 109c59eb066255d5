"""``erasure act``: the destruction act and the event-log extract (152-FZ; RKN Order No. 179).

A Russian operator that destroys personal data keeps, for three years, an
act of destruction and an extract from the system's event log. Both come
from the ledger (:mod:`erasure.act.content`) and ``[act]``, in Russian by
default, laid out by :mod:`erasure.act.render`: ``.docx`` and ``.html`` for
the act (a document people sign), ``.xlsx`` and ``.csv`` for the extract.
Never an identifier: subjects are request ids.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from erasure import ledger as ledger_mod
from erasure.act import content as content_mod
from erasure.act.render import WRITERS
from erasure.errors import OutputError, UsageError
from erasure.files import atomic_write
from erasure.job import Job
from erasure.outputs import check_output


@dataclass(frozen=True, slots=True)
class ActResult:
    out: Path
    kind: str  # "act" or "extract"
    destroyed: int  # rows of destroyed profiles (sweep re-deletes included)
    sweeps: int  # of which re-deletes after a restore
    nothing_found: int
    subjects: int  # request ids
    head: str  # the ledger's chain head cited


def write(
    job: Job,
    out: Path,
    *,
    run: int | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
) -> ActResult:
    """Write the act (``.docx``, ``.html``) or the extract (``.xlsx``, ``.csv``) to ``out``.

    UsageError (64): a bad suffix or range, a run the ledger does not have,
    or nothing in scope; ConfigError (78): a required ``[act]`` field
    missing; OutputError (74): ``out`` cannot be written.
    """
    writer = WRITERS.get(out.suffix.lower())
    if writer is None:
        raise UsageError(
            f"cannot write an act as {out.name!r}: the suffix picks the format, one of "
            + ", ".join(WRITERS)
        )
    content_mod.fields(job)  # 78 before anything else is read
    where = content_mod.scope(run, start, end)
    check_output(out, job)  # never the input, the job or the ledger; its folder exists (64)
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        content = content_mod.read(db, job, where, now=now or datetime.now(UTC))
    try:
        with atomic_write(out, job.perms) as tmp:
            writer(content, tmp)
    except OSError as exc:
        raise OutputError(f"cannot write the act {out}: {exc.strerror or exc}") from None
    return ActResult(
        out=out,
        kind="act" if out.suffix.lower() in (".docx", ".html") else "extract",
        destroyed=len(content.destroyed),
        sweeps=sum(1 for r in content.destroyed if r.kind == "sweep"),
        nothing_found=len(content.nothing_found),
        subjects=len(content.subjects),
        head=content.head,
    )
