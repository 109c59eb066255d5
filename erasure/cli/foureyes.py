"""Four eyes: ``hold``, ``release``, ``holds``, ``cancel``, ``reopen`` (and ``plan``, ``approve``).

A person's decisions about requests, recorded in the ledger (or queued for
the run that holds it). The use cases are in erasure.decide and
erasure.approval; this module parses, prints and returns exit codes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.cli.base import (
    _command,
    _load,
    _Parser,
    _Shell,
    identifier_arguments,
    identifier_given,
)

if TYPE_CHECKING:
    from erasure.decide import Recorded, Selector

_EXAMPLES = {
    "hold": 'echo "ivan@example.com" | erasure hold jobs/demo.toml --email - '
    '--reason "litigation L-7, counsel\'s letter of 2026-12-01" --until 2027-06-30',
    "release": 'erasure release jobs/demo.toml --request-id T-1042 --reason "claim settled"',
    "holds": "erasure holds jobs/demo.toml --json",
    "cancel": 'erasure cancel jobs/demo.toml --request-id T-1042 --reason "withdrawn by phone"',
    "reopen": 'erasure reopen jobs/demo.toml --request-id T-1042 --reason "cancelled by mistake"',
    "plan": "erasure plan jobs/demo.toml --out tonight.plan.json",
    "approve": "erasure approve tonight.plan.json --key secrets/dpo.key --out approved.json",
}


def _selector_arguments(parser: _Parser, *, request_only: bool = False) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--request-id", metavar="ID", help="the request (DSR ticket)")
    if not request_only:
        identifier_arguments(parser, which, "every request naming it")


def _reason(parser: _Parser) -> None:
    parser.add_argument(
        "--reason",
        required=True,
        metavar="TEXT",
        help="why, in words (kept in the ledger; anything shaped like an address is masked)",
    )


def register(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = _command(
        sub,
        "hold",
        "A legal hold: every pair of the request, or of every request naming the identifier, "
        "is never sent (by run or sweep) until released or past --until. During a run it "
        "takes effect in that run within seconds.",
        _EXAMPLES["hold"],
        with_job=True,
    )
    _selector_arguments(p)
    _reason(p)
    p.add_argument(
        "--until",
        metavar="DATE",
        help="YYYY-MM-DD (held through that day, UTC) or an ISO 8601 instant; default: "
        "until released",
    )

    p = _command(
        sub,
        "release",
        "End the standing holds of a request or identifier: its open pairs are sent by the "
        "next run.",
        _EXAMPLES["release"],
        with_job=True,
    )
    _selector_arguments(p)
    _reason(p)

    p = _command(
        sub,
        "holds",
        "List the standing holds and cancellations: keys, request ids, reasons, who, since.",
        _EXAMPLES["holds"],
        with_job=True,
    )
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = _command(
        sub,
        "cancel",
        "Withdraw a request (a duplicate, a mistake): its open pairs end cancelled and are "
        "never sent, also when a later file names them.",
        _EXAMPLES["cancel"],
        with_job=True,
    )
    _selector_arguments(p, request_only=True)
    _reason(p)
    p.add_argument(
        "--before-received",
        action="store_true",
        help="cancel a request id the ledger has not seen yet (else 64)",
    )

    p = _command(
        sub,
        "reopen",
        "Undo a cancellation: the request's open pairs are sent by the next run.",
        _EXAMPLES["reopen"],
        with_job=True,
    )
    _selector_arguments(p, request_only=True)
    _reason(p)
    _register_plans(sub)


def _register_plans(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = _command(
        sub,
        "plan",
        "What a run (or with --sweep, a sweep) would send, for a second person to approve: "
        "counts, request ids, inputs' SHA-256, base_url, db ids, settings and ledger "
        "fingerprints, an expiry and the pairs; never an identifier. Signed with [approval] "
        "signing_key_file; .json, or .html to read.",
        _EXAMPLES["plan"],
        with_job=True,
    )
    p.add_argument("--out", type=Path, required=True, metavar="PLAN", help="plan.json or .html")
    p.add_argument("--input", type=Path, help="the input file (overrides [input] path)")
    p.add_argument("--sweep", type=Path, metavar="EXPORT", help="plan a sweep of this export")
    p.add_argument("--retry-rejected", action="store_true", help="plan run --retry-rejected")
    p.add_argument(
        "--include-identifier-matches",
        action="store_true",
        help="plan sweep --include-identifier-matches",
    )

    p = _command(
        sub,
        "approve",
        "Show a plan in words and add an approver's Ed25519 signature (refused with the "
        "planner's key). Exit 0 written, 78 a plan or key that may not sign.",
        _EXAMPLES["approve"],
        with_job=False,
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="the plan (.json or .html)")
    p.add_argument("--key", type=Path, required=True, metavar="PATH", help="your private key")
    p.add_argument(
        "--out", type=Path, required=True, metavar="APPROVED", help="the approved plan (.json)"
    )


def cmd_plan(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import approval, logs, planning
    from erasure.outputs import check_output

    # planning reads the input as a run does, and logs as it does: on stderr, never stdout
    logs.configure(logs.choose_format(None, shell.err), stream=shell.err)
    job = _load(args)
    check_output(args.out, job, inputs=[args.input, args.sweep])
    if args.sweep is None and args.include_identifier_matches:
        shell.fail("--include-identifier-matches plans a sweep: give --sweep EXPORT", 64)
        return 64
    document = planning.make(
        job,
        input_path=args.input,
        export=args.sweep,
        retry_rejected=args.retry_rejected,
        include_identifier_matches=args.include_identifier_matches,
    )
    approval.write(document, args.out, job.perms)
    shell.print(*approval.words(document["plan"]))
    shell.print(f"plan: {args.out} (signed by the planner; now erasure approve it)")
    return 0


def cmd_approve(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import approval
    from erasure.files import OWNER_ONLY
    from erasure.outputs import check_output

    check_output(args.out, None, inputs=[args.plan, args.key])
    done = approval.approve(args.plan, args.key)
    shell.print(*done.words)
    approval.write(done.document, args.out, OWNER_ONLY)
    shell.print(
        f"approved by sha256:{done.approver} ({done.approvals} approver signatures): {args.out}"
    )
    return 0


def _selector(args: argparse.Namespace, shell: _Shell) -> Selector:
    from erasure.decide import Selector

    if args.request_id is not None:
        return Selector(request_id=args.request_id)
    matching, raw = identifier_given(args, shell)
    return Selector(None, matching, raw, args.db_id, args.resource_id)


def _said(shell: _Shell, done: Recorded, what: str) -> int:
    if done.queued is not None:
        shell.print(
            f"{what}: a run holds the ledger; queued in {done.queued}: that run records it "
            "and honours it within seconds (the next writer does, if the run ends first)"
        )
    else:
        shell.print(f"{what}: recorded in the ledger ({done.events} events)")
    if done.keys:
        shell.print("keys: " + ", ".join(done.keys))
    if done.requests:
        shell.print(f"requests: {len(done.requests)}: " + ", ".join(done.requests[:20]))
    if done.note:
        shell.print(f"note: {done.note}")
    return 0


def cmd_hold(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import decide

    job = _load(args)
    done = decide.hold(job, _selector(args, shell), args.reason, args.until)
    return _said(shell, done, "hold")


def cmd_release(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import decide

    job = _load(args)
    done = decide.release(job, _selector(args, shell), args.reason)
    return _said(shell, done, "released")


def cmd_holds(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import decide

    found = decide.holds(_load(args))
    if args.json:
        shell.print(
            json.dumps(
                {
                    "holds": [h.as_dict() for h in found.holds],
                    "cancelled": [c.as_dict() for c in found.cancels],
                },
                sort_keys=True,
            )
        )
        return 0
    if not found:
        shell.print("no standing holds or cancellations")
    for h in found.holds:
        what = f"request {h.request_id}" if h.request_id is not None else f"key {h.key}"
        until = f" until {h.until}" if h.until else ""
        queued = " (queued for the running run)" if h.seq is None else ""
        shell.print(f"hold: {what}: {h.reason} (by {h.who} since {h.at}{until}){queued}")
    for c in found.cancels:
        queued = " (queued for the running run)" if c.seq is None else ""
        shell.print(f"cancelled: request {c.request_id}: {c.reason} (by {c.who} at {c.at}){queued}")
    return 0


def cmd_cancel(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import decide

    done = decide.cancel(
        _load(args), args.request_id, args.reason, before_received=args.before_received
    )
    if not done.events:
        shell.print(f"note: {done.note}")
        return 0
    return _said(shell, done, "cancelled")


def cmd_reopen(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import decide

    return _said(shell, decide.reopen(_load(args), args.request_id, args.reason), "reopened")


HANDLERS = {
    "hold": cmd_hold,
    "release": cmd_release,
    "holds": cmd_holds,
    "cancel": cmd_cancel,
    "reopen": cmd_reopen,
    "plan": cmd_plan,
    "approve": cmd_approve,
}
