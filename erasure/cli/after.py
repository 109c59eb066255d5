"""After the delete (issue 15): keygen, receipt, check-receipt, screen and sweep."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from erasure.cli.base import Handler, SubParsers, _command, _load, _output_arguments, _Shell
from erasure.errors import MEANINGS, UsageError

if TYPE_CHECKING:
    from erasure.job import Job


def register(sub: SubParsers) -> None:
    """The parsers of keygen, receipt, check-receipt, screen and sweep."""
    p = _command(
        sub,
        "keygen",
        "Make a new Ed25519 signing key for receipts at PATH (owner-only PEM) and its "
        "public key at PATH.pub; with --identifier-key, the identifier key of a ledger key "
        "(for lookup, screen and validate only). Never overwrites a file.",
    )
    p.add_argument("--out", type=Path, metavar="PATH", help="the private key (signing key)")
    p.add_argument(
        "--ledger-key",
        type=Path,
        metavar="PATH",
        help="also write a new random ledger key (64 hex digits, owner-only) to PATH",
    )
    p.add_argument(
        "--identifier-key",
        type=Path,
        metavar="PATH",
        help="write the identifier key (owner-only) of --job's ledger key, or of the new "
        "--ledger-key, to PATH: it answers lookups but cannot extend the chain",
    )
    p.add_argument("--job", type=Path, metavar="JOB", help="the job whose ledger key to use")

    p = _command(
        sub,
        "receipt",
        "Write one request's signed erasure receipt: .json (the signed document) or .html "
        "(a page embedding it). Checks the ledger's chain first.",
    )
    p.add_argument("--request-id", required=True, metavar="ID", help="the request (DSR ticket)")
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="receipt.json or .html")
    _archive_argument(p)

    p = _command(
        sub,
        "check-receipt",
        "Check a receipt's signature; with --job also that the ledger's events up to its "
        "head say what it says. Needs no secret. Exit 0 valid, 1 not valid, 65 not a receipt.",
    )
    p.add_argument("receipt", type=Path, metavar="RECEIPT", help="the .json or .html receipt")
    _archive_argument(p)
    p.add_argument(
        "--public-key", type=Path, required=True, metavar="PATH", help="the signer's PATH.pub"
    )
    p.add_argument("--job", type=Path, metavar="JOB", help="check against this job's ledger")

    p = _command(
        sub,
        "screen",
        "Before an import: copy the input file's rows to --out (same format) less every row "
        "naming a person whose erasure finished. Exit 1 when cells could not be checked.",
    )
    p.add_argument("--input", type=Path, required=True, metavar="PATH", help="the file to import")
    p.add_argument("--out", type=Path, required=True, metavar="PATH", help="the screened copy")
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="KIND=HEADER",
        help="an identifier column of the file: email=E-mail, phone=Телефон, profile_id=ID "
        "(repeat for each; default: [screen] columns, else email, phone, profile_id in any case)",
    )

    p = _command(
        sub,
        "sweep",
        "After a restore or a sync: find profiles of an Altcraft export that came back after "
        "a finished erasure; delete those with an erased profile id again, list the rest. "
        "Exit 1 when anything reappeared or waits.",
    )
    p.add_argument("--export", type=Path, required=True, metavar="PATH", help="the export file")
    p.add_argument("--dry-run", action="store_true", help="only count; record and send nothing")
    p.add_argument(
        "--include-identifier-matches",
        action="store_true",
        help="delete profiles that only share an identifier with an erased request too",
    )
    p.add_argument(
        "--plan",
        type=Path,
        metavar="APPROVED",
        help="the approved plan of this sweep ([approval]: erasure plan --sweep, erasure approve)",
    )
    p.add_argument(
        "--again",
        action="store_true",
        help="sweep an export a finished sweep already read (a second restore made the same)",
    )
    _output_arguments(p)


def cmd_keygen(args: argparse.Namespace, shell: _Shell) -> int:
    _check_keygen(args)
    if args.out is not None:
        from erasure.after import use_cases

        made = use_cases.keygen(args.out, args.ledger_key)
        shell.print(
            f"signing key: {made.private_path} (owner-only; set [receipts] signing_key_file)",
            f"public key: {made.public_path} (hand it to whoever checks receipts)",
            f"public key sha256: {made.fingerprint}",
        )
        if made.ledger_key is not None:
            shell.print(f"ledger key: {made.ledger_key} (owner-only; set [ledger] key_file)")
    if args.identifier_key is not None:
        from erasure import keyfiles

        if args.job is not None:
            written = keyfiles.for_job(_load_job(args.job), args.identifier_key)
        else:
            written = keyfiles.for_ledger_key_file(args.ledger_key, args.identifier_key)
        shell.print(
            f"identifier key: {written} (owner-only; hand it out as [ledger] key_file for "
            "lookup, screen and validate: it cannot extend the chain)"
        )
    return 0


def _check_keygen(args: argparse.Namespace) -> None:
    """The combinations keygen accepts (argparse cannot say them)."""
    if args.out is None and args.identifier_key is None:
        raise UsageError("keygen needs --out PATH, --identifier-key PATH, or both")
    if args.ledger_key is not None and args.out is None:
        raise UsageError("--ledger-key comes with --out (a new signing key)")
    if args.job is not None and args.identifier_key is None:
        raise UsageError("--job is used with --identifier-key only")
    if args.identifier_key is not None and (args.job is None) == (args.ledger_key is None):
        raise UsageError(
            "--identifier-key needs either --job JOB (its ledger key) or --ledger-key PATH "
            "(a new one), not both"
        )


def _load_job(path: Path) -> Job:
    from erasure import job

    return job.load(path)


def cmd_receipt(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure.after import use_cases
    from erasure.receipts import verdict

    signed = use_cases.receipt(_load(args), args.request_id, args.out, archives=tuple(args.archive))
    shell.print(
        f"receipt: {args.out}",
        verdict(signed.receipt),
        f"signed by sha256:{signed.signature.public_key_sha256}",
    )
    return 0


def cmd_check_receipt(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import job as job_mod
    from erasure.after import use_cases

    job = job_mod.load(args.job) if args.job is not None else None
    result = use_cases.check_receipt(
        args.receipt, args.public_key, job, archives=tuple(args.archive)
    )
    shell.print(result.message)
    return 0 if result.valid else 1


def cmd_screen(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure.after import use_cases

    columns: dict[str, str] = {}
    for given in args.column:
        kind, sep, header = given.partition("=")
        if not sep or not header.strip():
            raise UsageError(f"--column {given!r}: write it as KIND=HEADER, such as email=E-mail")
        columns[kind.strip()] = header.strip()
    result = use_cases.screen(_load(args), args.input, args.out, columns)
    rows = result.unchecked_rows
    listed = ", ".join(str(r) for r in rows[:UNCHECKED_LISTED])
    more = f" and {len(rows) - UNCHECKED_LISTED} more" if len(rows) > UNCHECKED_LISTED else ""
    shell.print(
        f"kept: {result.kept}",
        f"screened: {result.screened}",
        f"unchecked: {result.unchecked}"
        + (
            " (kept: cells that could not be read as an identifier, "
            + ("rows " if len(rows) > 1 else "row ")
            + f"{listed}{more})"
            if result.unchecked
            else ""
        ),
        f"out: {result.out}",
    )
    return 1 if result.unchecked else 0


UNCHECKED_LISTED = 50  # row numbers of unchecked rows printed by screen


def cmd_sweep(args: argparse.Namespace, shell: _Shell) -> int:
    from erasure import logs
    from erasure.run import Options

    fmt = logs.choose_format(args.log_format)
    logs.configure(fmt)
    shell.json_errors = fmt == "json"
    progress = not args.no_progress and fmt == "console" and shell.err.isatty()
    from erasure.after.sweep import sweep

    result = sweep(
        _load(args),
        args.export,
        dry_run=args.dry_run,
        include_identifier_matches=args.include_identifier_matches,
        options=Options(progress=progress),
        approved_plan=args.plan,
        again=args.again,
    )
    if result.already is not None:
        shell.print(
            f"this export was swept whole by run {result.already}: nothing sent; pass --again "
            "if a second restore produced the same export"
        )
    summary = result.summary
    if summary is not None and summary.fatal is not None:
        shell.fail(str(summary.fatal), result.exit_code)
    for m in result.matches:
        shell.print(
            f"row {m.row}: profile {m.profile_id} reappeared ({m.match} match, request "
            f"{m.request_id or '-'}, first erased at event {m.first_erased_seq}): {m.decision}"
            + (" (listed before)" if m.listed_before else "")
        )
    by_pid = sum(1 for m in result.matches if m.match == "profile_id")
    shell.print(
        f"profiles in export: {result.rows}",
        f"reappeared: {len(result.matches)} ({by_pid} by profile id, "
        f"{len(result.matches) - by_pid} by identifier only)",
        (
            f"to delete again: {result.deleted} (dry run: nothing sent)"
            if result.dry_run
            else f"deleted again: {result.deleted}"
        ),
        f"waiting for a decision: {result.waiting}",
    )
    if summary is not None:
        o = summary.as_dict()["outcomes"]
        shell.print(
            f"run {summary.run}: erased {o['erased']}, not found {o['not_found']}, "
            f"rejected {o['rejected']}, failed {o['failed']}, pending {summary.pending}"
        )
    code = int(result.exit_code)
    shell.print(f"exit {code}: {_SWEEP_MEANINGS.get(code, MEANINGS.get(code, ''))}")
    return code


_SWEEP_MEANINGS = {
    0: "nothing came back",
    1: "erased profiles reappeared or wait for a decision: a person must look",
}


HANDLERS: dict[str, Handler] = {
    "keygen": cmd_keygen,
    "receipt": cmd_receipt,
    "check-receipt": cmd_check_receipt,
    "screen": cmd_screen,
    "sweep": cmd_sweep,
}


def _archive_argument(parser: argparse.ArgumentParser) -> None:
    """``--archive PATH`` (repeatable): the archive files the ledger's chain runs through."""
    parser.add_argument(
        "--archive",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="an archive file (erasure archive) holding the ledger's earlier events (repeatable)",
    )
