"""The read-only commands over the ledger: status, report, verify, archive, lookup."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.cli.base import (
    Handler,
    SubParsers,
    _command,
    _load,
    _Shell,
    identifier_arguments,
    identifier_given,
)
from erasure.wording import count

if TYPE_CHECKING:
    pass


def register(sub: SubParsers) -> None:
    p = _command(
        sub,
        "status",
        "The ledger's accounting: pairs by outcome, requests complete or not and why, "
        "unresolved invalid records, in doubt, and the last run (or the one running now).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--request-id", metavar="ID", help="that request's identifiers, outcomes and invalid rows"
    )

    p = _command(sub, "report", "Write the compliance report: .csv, .parquet, .xlsx or .html.")
    p.add_argument(
        "--out", type=Path, required=True, help="the report file; its suffix picks the format"
    )
    only = p.add_mutually_exclusive_group()
    only.add_argument("--run", type=int, metavar="N", help="only the pairs run N planned")
    only.add_argument("--request-id", metavar="ID", help="only this request's identifiers")

    p = _command(
        sub,
        "verify",
        "Check the ledger's keyed hash chain, its plain chain, its structure and "
        "its derived state; name the first broken event; print the chain head as "
        "SEQ:LINK. Exit 0 intact, 1 broken.",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="SEQ:LINK",
        help="check only the events after this head, printed by an earlier verify",
    )
    p.add_argument(
        "--archive",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="an archive file to check as the start of the chain (repeatable)",
    )

    p = _command(
        sub,
        "archive",
        "Move the events of runs finished before DATE into a sealed archive file; "
        "the ledger keeps a record citing its head, and every command still answers "
        "for archived requests.",
    )
    p.add_argument(
        "--before", required=True, metavar="DATE", help="YYYY-MM-DD: runs finished before it"
    )
    p.add_argument("--out", type=Path, required=True, help="the archive file (must not exist)")

    p = _command(
        sub,
        "lookup",
        "Was this person erased? Answers from the ledger by keyed "
        "hash. A value of - is read from standard input. Exit 0 when erased or "
        "not found, 1 otherwise.",
    )
    identifier_arguments(p, p.add_mutually_exclusive_group(required=True))


def cmd_status(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    if args.request_id is not None:
        return _print_request(shell, app.request_status(job, args.request_id), args.json)
    result = app.status(job)
    info = result.info
    if args.json:
        shell.print(json.dumps(info.as_json(), default=str, sort_keys=True))
        return 0
    shell.print(
        f"ledger: {result.ledger}",
        info.verdict,
        *info.accounting.lines(),
        f"in doubt: {info.in_doubt} pairs",  # the unresolved invalid records: an account line
    )
    swept = info.sweep_deletes
    if swept.deletes:
        shell.print(
            f"sweep deletes (apart from the pairs): {swept.deletes} = erased "
            f"{swept.erased} + not found {swept.not_found} + open {swept.open}"
        )
    for gone in info.open_elsewhere:
        shell.print(
            f"open elsewhere: {gone.open} pairs of {gone.file} (sha256 "
            f"{gone.sha256[:12]}), {gone.state} at {gone.path}: put it back, or "
            "`erasure cancel` their requests"
        )
    for done in info.safe_to_delete:
        shell.print(f"safe to delete: {done.file} (every pair of it is final)")
    came_back = info.reappeared
    if came_back.profiles:
        shell.print(
            f"reappeared: {came_back.profiles} profiles came back after erasure "
            f"({came_back.by_profile_id} by profile id, {came_back.by_identifier} by "
            f"identifier only): {came_back.erased_again} erased again, "
            f"{came_back.waiting} waiting for a decision, {came_back.delete_open} "
            "deleted with no final answer yet"
        )
    now, last = info.running, info.last_run
    if now:
        shell.print(
            f"running: run {now.run} since {now.since}, {count(now.in_flight, 'delete')} in flight"
        )
    elif last:
        finished = last.finished_at or "never (it was killed: run again to resume)"
        shell.print(
            f"last run: {last.run} started {last.started_at}, finished {finished}, "
            f"exit {last.exit_code}; pending from its plan: {info.last_run_pending}"
        )
    return 0


def _print_request(shell: _Shell, rows: list[dict[str, object]], as_json: bool) -> int:
    """One request's verdict, reasons and deadline, then its identifiers and invalid records.

    A request id the ledger has never seen is 64 before this (UnknownRequest).
    """
    if as_json:
        shell.print(json.dumps(rows, default=str, sort_keys=True))
        return 0
    first = rows[0]
    status, reason = first.get("request_status"), first.get("request_reason")
    shell.print(
        f"request {first['request_id']}: {status or '-'}"
        + (f" (reason: {reason})" if reason else ""),
        _deadline(first),
    )
    for row in rows:
        if row["outcome"] == "invalid":
            shell.print(f"invalid: row {row['row']} column {row['column'] or '-'}: {row['reason']}")
            continue
        code = "" if row["error_code"] is None else f" code {row['error_code']}"
        http = "" if row["http_status"] is None else f" HTTP {row['http_status']}"
        doubt = " (in doubt)" if row["in_doubt"] else ""
        doubt += " (reappeared: found again by sweep)" if row.get("reappeared") else ""
        shell.print(
            f"{row['matching']} {row['key']}: {row['outcome']}{doubt}{code}{http}"
            f" at {row['finished_at'] or '-'}"
        )
    return 0


def _deadline(row: dict[str, object]) -> str:
    """The request's deadline in words: the instant, whether it passed, an extension."""
    deadline = row.get("deadline")
    if not deadline:
        return "deadline: unknown (no received date)"
    said = f"deadline: {deadline}"
    if row.get("original_deadline"):
        said += f" (extended from {row['original_deadline']})"
    return said + (" - overdue" if row.get("overdue") else "")


def cmd_report(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    out = app.report(job, args.out, run=args.run, request_id=args.request_id)
    shell.print(f"report: {out}")
    return 0


def cmd_verify(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    check = app.verify(_load(args), start=args.start, archives=tuple(args.archive))
    for note in check.notes:
        shell.print(f"note: {note}")
    if check.ok:
        shell.print(f"ledger intact: {check.events} events")
    else:
        shell.print(f"ledger BROKEN: {check.problem}")
    shell.print(f"chain head: event {check.head_seq} {check.head_link}")
    shell.print(f"head: {check.head_seq}:{check.head_link}")
    if check.plain_link:
        shell.print(f"plain head: {check.head_seq}:{check.plain_link}")
    return 0 if check.ok else 1


def cmd_archive(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    done = app.archive(_load(args), args.before, args.out)
    shell.print(
        f"archived: events {done.first_seq} to {done.head_seq} of runs {done.runs} "
        f"into {done.out} (keep it with the ledger and its key)",
        f"archive head: {done.head_seq}:{done.head_link}",
        f"ledger: {done.ledger} now holds {done.kept} events and the archive record",
    )
    return 0


def cmd_lookup(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import app

    job = _load(args)
    matching, raw = identifier_given(args, shell)
    result = app.lookup(job, matching, raw, db_id=args.db_id, resource_id=args.resource_id)
    if not result.found:
        shell.print(f"not in the ledger (key {result.keys[0]})")
        return 1
    for row in result.found:
        doubt = " (in doubt)" if row.in_doubt else ""
        shell.print(
            f"request {row.request_id or '-'}: {row.outcome}{doubt} "
            f"at {row.finished_at or '-'} key {row.key}"
            + (f" profile {row.profile_id}" if row.profile_id else "")
            + (f" ({row.outcome}: {row.decision})" if row.decision else "")
        )
    return 0 if result.erased else 1


HANDLERS: dict[str, Handler] = {
    "status": cmd_status,
    "report": cmd_report,
    "verify": cmd_verify,
    "archive": cmd_archive,
    "lookup": cmd_lookup,
}
