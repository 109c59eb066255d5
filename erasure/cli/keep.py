"""Telling the systems around (issue 24): ``erasure notify``."""

from __future__ import annotations

import argparse

from erasure.cli.base import Handler, SubParsers, _command, _load, _Shell
from erasure.errors import ExitCode


def register(sub: SubParsers) -> None:
    """The parser of notify."""
    _command(
        sub,
        "notify",
        "Send the signed notices [notify] asks for that were not delivered yet (a run "
        "queues one when a request's status or reasons change). Exit 0 when all are "
        "delivered, 75 while some stay undelivered.",
        "erasure notify jobs/requests.toml",
    )


def cmd_notify(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure.after.notify import send_undelivered

    sent = send_undelivered(_load(args))
    shell.print(f"notices: {sent.delivered} delivered, {sent.left} still undelivered")
    if sent.left:
        shell.fail(
            f"{sent.left} notices could not be delivered to [notify] url; run erasure notify"
            " again later",
            ExitCode.TEMPFAIL,
        )
        return int(ExitCode.TEMPFAIL)
    return 0


HANDLERS: dict[str, Handler] = {
    "notify": cmd_notify,
}
