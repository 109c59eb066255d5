"""``erasure receipt`` and ``erasure check-receipt``: one request's receipt from the ledger.

``build`` checks the keyed chain first (a broken ledger never signs a
receipt), then reads the events up to its head and turns one request's
events into claims: per identifier (key) its last outcome, or ``pending``
when none is final yet, each citing the event that says so; its ``invalid``
records and whether a later ``resolved`` event fixed them; the chain heads.
Nothing here reads or writes a raw identifier.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from erasure import deadline_table, deadlines
from erasure import ledger as ledger_mod
from erasure.errors import (
    ConfigError,
    InputUnusable,
    LedgerMismatch,
    OutputError,
    SecretMissing,
    UnknownRequest,
    UsageError,
)
from erasure.files import Perms, atomic_write, open_regular
from erasure.job import Job
from erasure.keys import Role
from erasure.ledger import Kind, Outcome
from erasure.ledger.details import ExtendedDetail, ResolvedDetail, loads
from erasure.receipts import (
    ChainHeads,
    CheckResult,
    Claim,
    InvalidRecord,
    LedgerEvent,
    Request,
    SignedReceipt,
    check,
    format_head,
    load_private_key,
    load_public_key,
    make_receipt,
    private_key_from_pem,
    render_html,
    sign,
)
from erasure.receipts.document import RENDERER

from .events import ledger_events

__all__ = ["SUFFIXES", "build", "check_file", "claims_of", "signing_key", "write"]

SUFFIXES = (".json", ".html")
_DONE = frozenset({Outcome.ERASED, Outcome.NOT_FOUND})


@dataclass(frozen=True, slots=True)
class RequestEvents:
    """What the ledger says about one request, ready to be signed."""

    request: Request
    claims: tuple[Claim, ...]
    invalid: tuple[InvalidRecord, ...]


def signing_key(job: Job) -> Ed25519PrivateKey:
    """The ``[receipts]`` signing key: from its file (owner-only) or its variable."""
    settings = job.receipts
    if settings is None:
        raise ConfigError(
            "job file has no [receipts] section: set signing_key_file (from erasure keygen) "
            "and issuer"
        )
    settings.require()
    if settings.signing_key_file is not None:
        return load_private_key(settings.signing_key_file)
    assert settings.signing_key_env is not None
    pem = os.environ.get(settings.signing_key_env, "")
    if not pem:
        raise SecretMissing(
            f"receipts signing key is missing: set the environment variable "
            f"{settings.signing_key_env} (named by [receipts] signing_key_env)"
        )
    return private_key_from_pem(pem.encode(), f"variable {settings.signing_key_env}")


def build(
    job: Job,
    request_id: str,
    *,
    issued_at: str | None = None,
    archives: Sequence[Path] = (),
) -> SignedReceipt:
    """The signed receipt of ``request_id``; the chain is checked before anything is signed.

    ``archives`` are the archive files holding the ledger's earlier events
    (``erasure archive``): a request whose events were archived is answered
    from them. Raises :class:`LedgerMismatch` (78) for a broken chain,
    :class:`UsageError` (64) for a request id the ledger never heard of.
    """
    if job.receipts is None:
        signing_key(job)  # raises, naming the missing section
    assert job.receipts is not None
    key = signing_key(job)
    keyer = job.keyer(Role.CHAIN, command="erasure receipt")
    verdict = ledger_mod.verify(job.ledger.path, keyer, archives=archives)
    if not verdict.ok:
        raise LedgerMismatch(
            f"ledger {job.ledger.path} is broken ({verdict.problem}); no receipt is signed "
            "from a broken ledger: run erasure verify"
        )
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        events = chain_events(db, archives, up_to=verdict.head_seq)
        rule = deadline_table.rule_of(db)
        found = with_decisions(db, claims_of(events, request_id, rule), request_id)
        found = with_suppressed(db, found)
    if not found.claims and not found.invalid:
        raise UnknownRequest(request_id, _archived_hint(events))
    last = events[-1]
    heads = ChainHeads(
        format_head(verdict.head_seq, verdict.head_link),
        format_head(last.seq, last.plain_link),
    )
    receipt = make_receipt(
        found.request,
        found.claims,
        found.invalid,
        heads,
        job.receipts.require(),
        issued_at=issued_at,
        renderer=RENDERER,  # the page a check draws again and compares
    )
    return sign(receipt, key)


def with_decisions(db: sqlite3.Connection, found: RequestEvents, request_id: str) -> RequestEvents:
    """The held and cancelled claims with the decision in words (erasure.decision_words)."""
    from erasure.decision_words import reasons

    decided = [c for c in found.claims if c.outcome in (Outcome.HELD, Outcome.CANCELLED)]
    if not decided:
        return found
    words = reasons(db, None, [(request_id, c.key) for c in decided])
    claims = tuple(
        replace(c, decision=words.get((request_id, c.key))) if c in decided else c
        for c in found.claims
    )
    return replace(found, claims=claims)


def with_suppressed(db: sqlite3.Connection, found: RequestEvents) -> RequestEvents:
    """The claims whose address a ``[suppress]`` list keeps, saying which list."""
    from erasure.after.suppressions import suppressed_by_key

    if db.execute("SELECT 1 FROM events WHERE kind = 'suppression' LIMIT 1").fetchone() is None:
        return found
    said = dict(suppressed_by_key(db).iter_rows())
    claims = tuple(
        replace(c, suppressed=f"the address is {said[c.key]}")
        if said.get(c.key, "").startswith("kept on suppression list")
        else c
        for c in found.claims
    )
    return replace(found, claims=claims)


def claims_of(
    events: Iterable[LedgerEvent], request_id: str, rule: deadlines.Rule | None = None
) -> RequestEvents:
    """One request's claims and invalid records, from the events oldest first.

    The deadline is the one in force (erasure.deadlines), as an instant with its offset.
    """
    rule = rule or deadlines.Rule()
    extended: list[deadlines.Extension] = []
    claims: dict[str, Claim] = {}
    invalid: dict[int, InvalidRecord] = {}
    received: str | None = None
    for seq, _data, f, _link in events:
        kind = f["kind"]
        if kind == Kind.RESOLVED:
            for cited in loads(ResolvedDetail, f.get("detail")).resolves:
                if cited in invalid:
                    invalid[cited] = replace(invalid[cited], resolved=True)
            continue
        if f.get("request_id") != request_id:
            continue
        key = f.get("key")
        if kind == Kind.EXTENDED:
            to = loads(ExtendedDetail, f.get("detail")).extended_to
            at = datetime.fromisoformat(f["at"])
            extended.append(deadlines.Extension(at, date.fromisoformat(to)))
        if kind in (Kind.PLANNED, Kind.INVALID):  # its rows' earliest usable date, any row
            received = _earliest(received, f.get("received_at"))
        if kind == Kind.PLANNED and isinstance(key, str):
            before = claims.get(key)
            if before is None or before.outcome not in _DONE:
                # planned (again): not final until an outcome says so
                claims[key] = Claim(
                    seq=seq,
                    db_id=int(f["db_id"]),
                    matching=str(f["matching"]),
                    key=key,
                    outcome=Outcome.PENDING,
                    in_doubt=False,
                    resource_id=f.get("resource_id"),
                    field_name=f.get("field_name"),
                )
        elif kind == Kind.OUTCOME and isinstance(key, str) and key in claims:
            claims[key] = replace(
                claims[key],
                seq=seq,
                # none: a person's decision ended (a release, a reopen): open again
                outcome=Outcome.PENDING if f["outcome"] is None else Outcome(f["outcome"]),
                in_doubt=bool(f.get("in_doubt")),
                profile_id=f.get("profile_id"),
                at=f["at"],
            )
        elif kind == Kind.INVALID:
            invalid[seq] = InvalidRecord(
                row=int(f.get("row") or 0),
                column=str(f.get("column") or ""),
                reason=str(f.get("reason") or ""),
                seq=seq,
            )
    # a pending claim cites its plan, and a plan holds no outcome time
    final = tuple(
        replace(c, at=None, profile_id=None) if c.outcome is Outcome.PENDING else c
        for c in claims.values()
    )
    return RequestEvents(
        Request(request_id, received, *_deadline(received, rule, extended)),
        final,
        tuple(invalid.values()),
    )


def _earliest(kept: str | None, seen: str | None) -> str | None:
    """The earlier of two received_at instants (ISO 8601), either possibly missing."""
    if seen is None or kept is None:
        return kept or seen
    return seen if datetime.fromisoformat(seen) < datetime.fromisoformat(kept) else kept


def _deadline(
    received: str | None, rule: deadlines.Rule, extended: list[deadlines.Extension]
) -> tuple[str | None, str | None]:
    """The deadline in force, and the original one where an extension moved it."""
    if received is None:
        return None, None
    try:
        moment = datetime.fromisoformat(received)
    except ValueError:
        return None, None
    original = deadlines.deadline(moment, rule)
    in_force = deadlines.in_force(original, extended, rule).astimezone(rule.zone)
    moved = deadlines.show(original) if in_force != original else None
    return deadlines.show(in_force), moved


def write(signed: SignedReceipt, out: Path, perms: Perms) -> Path:
    """Write the receipt: ``.json`` the signed file, ``.html`` the page embedding it."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--out {out}: a receipt is .json or .html, not {suffix or 'no suffix'}")
    data = signed.raw if suffix == ".json" else render_html(signed).encode("utf-8")
    try:
        with atomic_write(out, perms) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"cannot write the receipt {out}: {exc.strerror or exc}") from None
    return out


def check_file(
    receipt: Path, public_key: Path, job: Job | None = None, *, archives: Sequence[Path] = ()
) -> CheckResult:
    """Check a receipt file (``.json`` or ``.html``); with ``job``, against its ledger.

    Needs no secret: the ledger is read read-only and its plain chain
    recomputed. Raises :class:`~erasure.receipts.NotAReceipt` (65).
    """
    key = load_public_key(public_key)
    try:
        with open_regular(receipt, "receipt") as f:  # a FIFO or a device: 65, never a hang
            raw = f.read()
    except OSError as exc:
        raise InputUnusable(f"receipt {receipt} cannot be read: {exc.strerror}") from None
    if job is None:
        return check(raw, key)
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        events = chain_events(db, archives)
    if events and events[0].seq != 1:
        raise UsageError(
            f"the ledger {job.ledger.path} starts at event {events[0].seq}: its earlier "
            "events are in an archive; name it with --archive PATH"
        )
    return check(raw, key, events)


def chain_events(
    db: sqlite3.Connection, archives: Sequence[Path], *, up_to: int | None = None
) -> list[LedgerEvent]:
    """The chain's events oldest first: the archives' (before the ledger's first), then its own.

    The archives may be given in any order; each is read read-only. The
    checks that follow (the plain chain recomputed from the first event)
    find an archive that is not this ledger's, or one missing.
    """
    (first,) = db.execute("SELECT min(seq) FROM events").fetchone()
    first = int(first or 1)
    earlier: dict[int, LedgerEvent] = {}
    for path in archives:
        with closing(ledger_mod.open_events(path)) as archived:
            for event in ledger_events(archived):
                if event.seq < first:
                    earlier.setdefault(event.seq, event)
    return [earlier[seq] for seq in sorted(earlier)] + list(ledger_events(db, up_to=up_to))


def _archived_hint(events: list[LedgerEvent]) -> str:
    if events and events[0].seq != 1:
        return (
            f" (its events 1 to {events[0].seq - 1} are in an archive: name it with --archive PATH)"
        )
    return ""
