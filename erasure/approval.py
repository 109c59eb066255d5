"""Four eyes: signed plans, approvals, and the check a run or sweep makes before sending.

A **plan** (``erasure plan``) says what a run (or a sweep) would send, for a
second person: the counts in the accounting's words, the request ids, each
input's SHA-256, ``base_url``, the db ids, a digest of the settings, the
ledger's fingerprint, an expiry, and the (request id, key) pairs to finish
with their digest; never an identifier. It is JSON::

    {"plan": {...}, "signatures": [{"role": "planner" | "approver",
      "public_key": PEM, "public_key_sha256": HEX, "signature": BASE64}, ...]}

each signature Ed25519 over the RFC 8785 bytes of ``plan`` (the receipts'
canonical form and keys, erasure.receipts). ``erasure approve`` adds an
approver's signature, never with the planner's key.

With ``[approval] required``, ``run`` and ``sweep`` need ``--plan APPROVED``:
:func:`check` verifies the signatures (the planner's, and ``needed`` of the
``approvers``, none the planner's), the expiry, and that the plan was made
for this ledger, ``base_url``, db ids, settings, inputs and flags, and that
every pair tonight's command would send is among the approved pairs (a
resumed run sends a subset). Any difference is a :class:`ConfigError` (78)
that names it; nothing is sent.

The policy (required, needed, the approvers' and the planner's
fingerprints) is recorded in the ledger (a ``policy`` event) when first
used; a job file that later weakens it (not required, fewer needed, a new
approver or planner) is refused unless an approved plan carries the new
policy, signed by ``needed`` of the recorded approvers.

Longer than most modules: the plan's document, its file, ``approve`` and the
check are one protocol over one format, kept together so that what a plan
signs and what the check compares are read side by side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from erasure.errors import ConfigError, InputUnusable, OutputError, UsageError
from erasure.job import Job
from erasure.ledger import details
from erasure.ledger.events import Event, Kind

FORMAT = "erasure-plan/1"


class ApprovalRefused(ConfigError):
    """A plan or approval that does not match (78): the message names what differs."""


# ---------------------------------------------------------------- the document


def pairs_digest(pairs: Iterable[tuple[str | None, str]]) -> str:
    """SHA-256 of the sorted (request id, key) pairs, one ``request_id TAB key`` line each."""
    digest = hashlib.sha256()
    for rid, key in sorted((r or "", k) for r, k in pairs):
        digest.update(f"{rid}\t{key}\n".encode())
    return digest.hexdigest()


def settings_digest(job: Job) -> str:
    from erasure.receipts.canonical import canonical_json

    return hashlib.sha256(canonical_json(job.settings())).hexdigest()


def policy_of(job: Job) -> dict[str, Any]:
    """The job's approval policy: required, needed, approvers' and planner's fingerprints."""
    a = job.approval
    if a is None:
        return {"required": False, "needed": 0, "approvers": [], "planner": None}
    return {
        "required": a.required,
        "needed": a.needed,
        "approvers": sorted(_fingerprint_file(p) for p in a.approvers),
        "planner": _planner_fingerprint(job) if a.signing_key_file else None,
    }


def _fingerprint_file(path: Path) -> str:
    from erasure.receipts.signing import fingerprint, load_public_key

    return fingerprint(load_public_key(path))


def planner_key(job: Job) -> Any:
    """The planner's private key (``[approval] signing_key_file``); 78 when there is none."""
    from erasure.receipts.signing import load_private_key

    if job.approval is None or job.approval.signing_key_file is None:
        raise ConfigError(
            "job file has no [approval] signing_key_file: the planner's key signs plans "
            "(make one with erasure keygen)"
        )
    return load_private_key(job.approval.signing_key_file)


def _planner_fingerprint(job: Job) -> str:
    from erasure.receipts.signing import fingerprint

    return fingerprint(planner_key(job).public_key())


def ledger_id(db: sqlite3.Connection | None) -> str | None:
    """The ledger's fingerprint: SHA-256 of its first event's keyed link (None: no ledger)."""
    if db is None:
        return None
    row = db.execute("SELECT link FROM events ORDER BY seq LIMIT 1").fetchone()
    return hashlib.sha256(str(row[0]).encode()).hexdigest() if row else None


@dataclass(frozen=True, slots=True)
class Tonight:
    """What the command would do: its kind, flags, inputs, db ids, pairs, counts in words."""

    command: str  # run | sweep
    flags: tuple[str, ...]  # --retry-rejected, --include-identifier-matches
    inputs: tuple[tuple[str, str], ...]  # (file name, sha256)
    db_ids: tuple[int, ...]
    pairs: tuple[tuple[str | None, str], ...]
    words: tuple[str, ...]  # the accounting's lines
    counts: dict[str, Any]


def body(
    job: Job, tonight: Tonight, db: sqlite3.Connection | None, now: datetime
) -> dict[str, Any]:
    """The plan's signed content."""
    assert job.approval is not None
    return {
        "format": FORMAT,
        "command": tonight.command,
        "flags": list(tonight.flags),
        "made_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(seconds=job.approval.expires_s))
        .astimezone(UTC)
        .isoformat(timespec="seconds"),
        "base_url": job.api.base_url,
        "db_ids": sorted(tonight.db_ids),
        "settings_sha256": settings_digest(job),
        "ledger": ledger_id(db),
        "inputs": [{"name": n, "sha256": h} for n, h in tonight.inputs],
        "counts": tonight.counts,
        "words": list(tonight.words),
        "request_ids": sorted({r for r, _ in tonight.pairs if r is not None}),
        "pairs": {
            "count": len(tonight.pairs),
            "sha256": pairs_digest(tonight.pairs),
            "list": sorted([r or "", k] for r, k in tonight.pairs),
        },
        "policy": policy_of(job),
    }


def _sign(plan: dict[str, Any], key: Any, role: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    from erasure.receipts.canonical import canonical_json
    from erasure.receipts.signing import fingerprint, sign_bytes

    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {
        "role": role,
        "public_key": pem,
        "public_key_sha256": fingerprint(public),
        "signature": base64.b64encode(sign_bytes(key, canonical_json(plan))).decode(),
    }


def _verifies(plan: dict[str, Any], sig: dict[str, Any]) -> bool:
    from erasure.receipts.canonical import canonical_json
    from erasure.receipts.signing import fingerprint, public_key_from_pem, verify_bytes

    try:
        key = public_key_from_pem(str(sig["public_key"]).encode(), "a plan's signature")
        raw = base64.b64decode(str(sig["signature"]), validate=True)
    except (ConfigError, ValueError, KeyError):
        return False
    return fingerprint(key) == sig.get("public_key_sha256") and verify_bytes(
        key, raw, canonical_json(plan)
    )


def sign_plan(job: Job, content: dict[str, Any]) -> dict[str, Any]:
    return {"plan": content, "signatures": [_sign(content, planner_key(job), "planner")]}


# ---------------------------------------------------------------- files


def write(document: dict[str, Any], out: Path, perms: Any) -> Path:
    """``.json``: the signed document; ``.html``: a page for a person with it inside."""
    from erasure.files import atomic_write

    suffix = out.suffix.lower()
    if suffix not in (".json", ".html"):
        raise UsageError(f"--out {out}: a plan is .json or .html, not {suffix or 'no suffix'}")
    raw = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    data = raw if suffix == ".json" else render_html(document, raw)
    try:
        with atomic_write(out, perms) as tmp:
            tmp.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the plan {out}: {exc.strerror or exc}") from None
    return out


_PRE_START = '<pre id="plan">'


def read(path: Path) -> dict[str, Any]:
    """A plan file (.json, or the .html view with the JSON inside); 65 when it is none."""
    import html

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"plan {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputUnusable(f"plan {path} cannot be read: {exc}") from None
    if _PRE_START in text:
        text = html.unescape(text.split(_PRE_START, 1)[1].split("</pre>", 1)[0])
    try:
        doc = json.loads(text)
    except ValueError:
        raise InputUnusable(f"{path} is not a plan (not JSON)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("plan"), dict):
        raise InputUnusable(f"{path} is not a plan")
    if doc["plan"].get("format") != FORMAT or not isinstance(doc.get("signatures"), list):
        raise InputUnusable(f"{path} is not a plan of this erasure ({FORMAT})")
    return doc


def words(plan: dict[str, Any]) -> list[str]:
    """The plan in words, for the approver (and the HTML view)."""
    flags = " ".join(plan.get("flags") or []) or "no flags"
    ids = plan.get("request_ids") or []
    shown = ", ".join(ids[:30]) + (f", ... ({len(ids) - 30} more)" if len(ids) > 30 else "")
    return [
        f"erasure {plan['command']} ({flags}) against {plan['base_url']}, "
        f"databases {', '.join(str(d) for d in plan['db_ids']) or '-'}",
        f"made {plan['made_at']}, good until {plan['expires_at']}",
        f"pairs to finish: {plan['pairs']['count']} (sha256 {plan['pairs']['sha256']})",
        f"requests: {len(ids)}: {shown or '-'}",
        *(f"input {i['name']} sha256 {i['sha256']}" for i in plan.get("inputs") or []),
        *plan.get("words", []),
        f"settings sha256 {plan['settings_sha256']}; ledger {plan.get('ledger') or '(new)'}",
        f"policy: required {plan['policy']['required']}, {plan['policy']['needed']} of "
        f"{len(plan['policy']['approvers'])} approvers",
    ]


def render_html(document: dict[str, Any], raw: str) -> str:
    import html

    plan = document["plan"]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in words(plan))
    sigs = "".join(
        "<li>" + html.escape(f"{s.get('role')}: sha256:{s.get('public_key_sha256')}") + "</li>"
        for s in document.get("signatures", [])
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\"><title>erasure plan</title></head><body>"
        f"<h1>What erasure {html.escape(plan['command'])} would send</h1><ul>{items}</ul>"
        f"<h2>Signatures</h2><ul>{sigs}</ul>"
        "<h2>The signed plan (check it with erasure approve)</h2>"
        f"{_PRE_START}{html.escape(raw)}</pre></body></html>\n"
    )


# ---------------------------------------------------------------- approve


@dataclass(frozen=True, slots=True)
class Approved:
    document: dict[str, Any]
    words: list[str]
    approver: str  # the approver's key fingerprint
    approvals: int  # approver signatures now on it


def approve(plan_path: Path, key_path: Path) -> Approved:
    """Check the planner's signature, then add the approver's (never the planner's key)."""
    from erasure.receipts.signing import fingerprint, load_private_key

    doc = read(plan_path)
    plan, sigs, planners = _signed_by_planner(
        doc,
        plan_path,
        "the plan was changed after it was signed, or is not a plan; nothing was signed",
    )
    key = load_private_key(key_path)
    mine = fingerprint(key.public_key())
    if any(s.get("public_key_sha256") == mine for s in planners):
        raise ApprovalRefused(
            f"{key_path} is the planner's key (sha256:{mine[:16]}): an approval needs a second "
            "person's key; nothing was signed"
        )
    if any(s.get("public_key_sha256") == mine for s in sigs):
        raise ApprovalRefused(f"{key_path} has approved this plan already: nothing was signed")
    doc = {**doc, "signatures": [*sigs, _sign(plan, key, "approver")]}
    count = sum(1 for s in doc["signatures"] if s.get("role") == "approver")
    return Approved(doc, words(plan), mine, count)


# ---------------------------------------------------------------- the check


def recorded_policy(db: sqlite3.Connection) -> tuple[int, dict[str, Any]] | None:
    """The last ``policy`` event (seq, policy), or None when none was recorded."""
    row = db.execute(  # by decision_state's index, not a scan of the events
        "SELECT e.seq, e.detail FROM events e WHERE e.seq = (SELECT max(seq) "
        "FROM decision_state WHERE kind = 'policy')"
    ).fetchone()
    return (int(row[0]), details.loads(details.PolicyDetail, row[1]).policy) if row else None


def _weaker(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """How ``new`` weakens the recorded policy ``old`` (one not required binds nothing)."""
    if not old["required"]:
        return []
    why = []
    if old["required"] and not new["required"]:
        why.append("approval is no longer required")
    if new["needed"] < old["needed"]:
        why.append(f"needed went from {old['needed']} to {new['needed']}")
    added = sorted(set(new["approvers"]) - set(old["approvers"]))
    if added:
        why.append(f"approvers added ({', '.join('sha256:' + a[:16] for a in added)})")
    if old.get("planner") and new.get("planner") != old["planner"]:
        why.append("the planner's key changed")
    return why


def check(
    job: Job,
    db: sqlite3.Connection,
    plan_path: Path | None,
    tonight: Tonight,
    now: datetime | None = None,
    *,
    run: int | None = None,
) -> list[Event]:
    """Refuse (78, naming what differs) unless tonight may send; the events to record.

    ``db`` is the ledger, opened by the writer that holds its lock.
    """
    at = now if now is not None else datetime.now(UTC)
    policy = policy_of(job)
    recorded = recorded_policy(db)
    weaker = _weaker(policy, recorded[1]) if recorded else []
    # the policy that rules tonight: the recorded one while the job file would weaken it
    ruling = recorded[1] if weaker and recorded else policy
    if weaker and recorded is not None and plan_path is None:
        _refuse_weakened(recorded, weaker)
    if not ruling["required"] and plan_path is None:
        return []
    if plan_path is None:
        raise ApprovalRefused(
            f"[approval] required: erasure {tonight.command} sends nothing without "
            "--plan APPROVED (make one with erasure plan, have it signed with erasure approve)"
        )
    doc = read(plan_path)
    plan = doc["plan"]
    _check_signatures(doc, ruling, plan_path)
    if weaker and plan.get("policy") != policy:
        _refuse_weakened(recorded, weaker)  # type: ignore[arg-type]
    _check_matches(job, db, plan, tonight, at)
    events = []
    if recorded is None or recorded[1] != policy:
        events.append(
            Event(
                Kind.POLICY,
                0,
                detail=details.encode(details.PolicyDetail(policy, bool(weaker))),
            )
        )
    from erasure.receipts.canonical import canonical_json

    events.append(
        Event(
            Kind.APPROVAL,
            0,
            detail=details.encode(
                details.build(
                    details.ApprovalDetail,
                    {
                        "command": tonight.command,
                        "plan_sha256": hashlib.sha256(canonical_json(plan)).hexdigest(),
                        "made_at": plan["made_at"],
                        "expires_at": plan["expires_at"],
                        "planner": [
                            s["public_key_sha256"]
                            for s in doc["signatures"]
                            if s.get("role") == "planner"
                        ],
                        "approvers": [
                            s["public_key_sha256"]
                            for s in doc["signatures"]
                            if s.get("role") == "approver"
                        ],
                        "pairs": len(tonight.pairs),
                        "run": run,  # the run it approves (reports name its pairs "approved")
                    },
                )
            ),
        )
    )
    return events


def _refuse_weakened(recorded: tuple[int, dict[str, Any]], weaker: Sequence[str]) -> list[Event]:
    raise ApprovalRefused(
        f"this job file weakens the [approval] policy recorded in the ledger at event "
        f"{recorded[0]} ({'; '.join(weaker)}): refused unless a plan carrying the new "
        "policy is approved by the recorded approvers (--plan APPROVED)"
    )


def _signed_by_planner(
    doc: dict[str, Any], path: Path, why: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The plan, its signatures and the planner's, once every planner signature verifies."""
    plan = doc["plan"]
    sigs = [s for s in doc["signatures"] if isinstance(s, dict)]
    planners = [s for s in sigs if s.get("role") == "planner"]
    if not planners or not all(_verifies(plan, s) for s in planners):
        raise ApprovalRefused(f"plan {path}: the planner's signature does not verify: {why}")
    return plan, sigs, planners


def _check_signatures(doc: dict[str, Any], ruling: dict[str, Any], path: Path) -> None:
    plan, sigs, planners = _signed_by_planner(doc, path, "the plan was changed after it was signed")
    planner = planners[0]["public_key_sha256"]
    if ruling.get("planner") and planner != ruling["planner"]:
        raise ApprovalRefused(
            f"plan {path} was signed by sha256:{planner[:16]}, not by the [approval] "
            "signing_key_file's key"
        )
    approvers = [s for s in sigs if s.get("role") == "approver"]
    for s in approvers:
        if not _verifies(plan, s):
            raise ApprovalRefused(
                f"plan {path}: the approval by sha256:{str(s.get('public_key_sha256'))[:16]} "
                "does not verify (the plan was changed after it was approved)"
            )
    if any(s["public_key_sha256"] == planner for s in approvers):
        raise ApprovalRefused(
            f"plan {path} is approved by the planner's own key: four eyes need two people"
        )
    allowed = set(ruling["approvers"])
    strangers = sorted({s["public_key_sha256"] for s in approvers} - allowed)
    good = {s["public_key_sha256"] for s in approvers} & allowed
    if len(good) < ruling["needed"]:
        extra = (
            f"; signed by a key not in [approval] approvers (sha256:{strangers[0][:16]})"
            if strangers
            else ""
        )
        raise ApprovalRefused(
            f"plan {path} has {len(good)} of the {ruling['needed']} approvals needed{extra}"
        )


def _check_matches(
    job: Job, db: sqlite3.Connection, plan: dict[str, Any], tonight: Tonight, at: datetime
) -> None:
    def refuse(what: str) -> None:
        raise ApprovalRefused(f"the approved plan does not match tonight: {what}")

    if datetime.fromisoformat(plan["expires_at"]) <= at:
        refuse(f"it expired at {plan['expires_at']}")
    if plan["command"] != tonight.command:
        refuse(f"it is for erasure {plan['command']}, not erasure {tonight.command}")
    if plan["base_url"] != job.api.base_url:
        refuse(f"it was made for base_url {plan['base_url']}, the job sends to {job.api.base_url}")
    if plan["settings_sha256"] != settings_digest(job):
        refuse("the job's settings changed since it was made (settings sha256 differs)")
    mine = ledger_id(db)
    if plan.get("ledger") is not None and plan["ledger"] != mine:
        refuse("it was made for another ledger (fingerprint differs)")
    if plan.get("ledger") is None:  # made before this ledger existed: it must be newer
        (created,) = db.execute("SELECT at FROM events ORDER BY seq LIMIT 1").fetchone()
        if datetime.fromisoformat(created) < datetime.fromisoformat(plan["made_at"]):
            refuse("it was made for a new ledger, and this ledger existed before it")
    if sorted(plan["flags"]) != sorted(tonight.flags):
        refuse(
            f"flags {plan['flags'] or 'none'} were approved, "
            f"tonight has {list(tonight.flags) or 'none'}"
        )
    approved_inputs = {i["sha256"] for i in plan["inputs"]}
    for name, sha in tonight.inputs:
        if sha not in approved_inputs:
            refuse(f"input {name} (sha256 {sha[:16]}) is not the file it was made for")
    if not set(tonight.db_ids) <= set(plan["db_ids"]):
        refuse(f"databases {sorted(set(tonight.db_ids) - set(plan['db_ids']))} were not approved")
    approved = {(r or None, k) for r, k in plan["pairs"]["list"]}
    if pairs_digest(approved) != plan["pairs"]["sha256"]:
        refuse("its pair list does not match its digest")
    extra = [p for p in tonight.pairs if p not in approved]
    if extra:
        refuse(
            f"{len(extra)} pairs tonight were not approved (such as request {extra[0][0] or '-'})"
        )
