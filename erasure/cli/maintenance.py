"""Keeping a ledger current across releases: migrate."""

from __future__ import annotations

import argparse

from erasure.cli.base import Handler, SubParsers, _command, _load, _Shell


def register(sub: SubParsers) -> None:
    """The parser of migrate."""
    _command(
        sub,
        "migrate",
        "Give a ledger written by an older release this release's derived state, under the "
        "lock, writing no event (the next run would do it first thing). Needed before the "
        "read-only commands can read a ledger that starts after an archive.",
        "erasure migrate jobs/nightly.toml",
        with_job=True,
    )


def cmd_migrate(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure.migrating import migrate_job

    job = _load(args)
    if migrate_job(job):
        shell.print(f"ledger: {job.ledger.path} migrated to this release's derived state")
    else:
        shell.print(f"ledger: {job.ledger.path} is current: nothing to do")
    return 0


HANDLERS: dict[str, Handler] = {"migrate": cmd_migrate}
