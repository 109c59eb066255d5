"""Deadlines and the destruction act (issue 25): extend and act."""

from __future__ import annotations

import argparse
from pathlib import Path

from erasure.cli.base import Handler, SubParsers, _command, _load, _Shell
from erasure.wording import count


def register(sub: SubParsers) -> None:
    """The parsers of extend and act."""
    p = _command(
        sub,
        "extend",
        "Extend one request's deadline within its rule's limit, only before it has passed, "
        "recording when the person was told and why. Exit 78 when the rule allows no "
        "extension, it goes beyond the limit or the deadline has passed; 64 for an unknown id.",
        'erasure extend jobs/demo.toml --request-id T-1042 --by "2 months" '
        '--informed-at 2026-03-20 --reason "many requests at once (Art. 12(3))"',
    )
    p.add_argument("--request-id", required=True, metavar="ID", help="the request (DSR ticket)")
    p.add_argument(
        "--by",
        required=True,
        metavar="DURATION",
        help='"N days", "N months" or "N working days", counted from the deadline in force',
    )
    p.add_argument(
        "--informed-at",
        required=True,
        metavar="DATE",
        help="when the person was told (ISO 8601; without an offset: in [input] timezone)",
    )
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded in the ledger)")

    p = _command(
        sub,
        "act",
        "Write the destruction act (.docx, .html: a document people sign) or the event-log "
        "extract (.xlsx, .csv) of one run or a date range, from the ledger and [act] "
        "(152-FZ; Roskomnadzor Order No. 179). Exit 64 bad range, 78 an [act] field missing.",
        "erasure act jobs/demo.toml --run 3 --out act-run-3.docx",
    )
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help=".docx .html .xlsx .csv")
    p.add_argument("--run", type=int, metavar="N", help="the run whose destructions to record")
    p.add_argument(
        "--from", dest="start", metavar="DATE", help="first day (YYYY-MM-DD, [input] timezone)"
    )
    p.add_argument("--to", dest="end", metavar="DATE", help="last day, inclusive")


def cmd_extend(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import deadlines
    from erasure.extend import extend

    done = extend(_load(args), args.request_id, args.by, args.informed_at, args.reason)
    shell.print(
        f"request {done.request_id}: deadline extended to {deadlines.show(done.new)}",
        f"original deadline: {deadlines.show(done.original)}",
        f"latest allowed due day: {done.limit.isoformat()}",
        f"recorded as ledger event {done.seq}",
    )
    return 0


def cmd_act(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import act

    done = act.write(_load(args), args.out, run=args.run, start=args.start, end=args.end)
    again = f", {done.sweeps} of them again after a restore" if done.sweeps else ""
    shell.print(
        f"{done.kind}: {done.out}",
        f"destroyed: {count(done.destroyed, 'profile')} of {count(done.subjects, 'request')}"
        f"{again}",
        f"nothing found to destroy: {done.nothing_found}",
        f"ledger chain head: {done.head}",
    )
    return 0


HANDLERS: dict[str, Handler] = {
    "extend": cmd_extend,
    "act": cmd_act,
}
