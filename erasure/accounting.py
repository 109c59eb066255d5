"""The one accounting model: every input row and every request, accounted for.

::

    input rows ─► rows with an identifier cell | rows with none (invalid: no_identifier) | blank
    identifier cells ─► valid | invalid | in a row whose db_id/resource_id is unusable
    valid ─► (request, identifier) pairs + duplicates folded
    pairs ─► already final in the ledger + to send (as N deletes: one per distinct identifier)
    pairs in the ledger ─► erased + not_found + rejected + failed + pending
    requests ─► complete + incomplete (each under one reason: erasure.partition)

Each stage is a frozen dataclass whose :meth:`identities` say how its parts
sum to its whole; ``validate``, the run's summary and progress total,
``status``, ``status --json``, every report and the HTML headline print
from here, with the same words (:data:`WORDS`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from erasure import partition
from erasure.wording import count

# One name per number, the same in every command and report.
WORDS: Mapping[str, str] = {
    "rows": "input rows",
    "with_identifier": "rows with an identifier",
    "no_identifier": "rows with no identifier",
    "blank": "blank rows",
    "identifiers": "identifier cells",
    "valid": "valid",
    "invalid_cells": "invalid cells",
    "skipped": "in rows with an unusable db_id or resource_id",
    "pairs": "(request, identifier) pairs",
    "duplicates": "duplicates folded",
    "already_final": "already final in the ledger",
    "to_send": "to send",
    "held": "held (a legal hold)",
    "cancelled": "cancelled",
    "deletes": "deletes to send (one per distinct identifier)",
    "invalid": "invalid records",
    "erased": "erased",
    "not_found": "not found",
    "rejected": "rejected",
    "failed": "failed",
    "pending": "pending",
    "requests": "requests",
    "complete": "complete",
    "incomplete": "incomplete",
    # the partition's reasons (erasure.partition), as parts of "incomplete"
    **{f"reason_{r.value}": words for r, words in partition.WORDS.items()},
    "open_past_deadline": "open and past the deadline",
    "finished_late": "finished late",
    "deadline_unknown": "deadline unknown (every received date unusable)",
    "unresolved": "unresolved invalid records",
    "resolved": "resolved invalid records",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """``whole == sum(parts)``: one line of arithmetic, named in :data:`WORDS`."""

    whole: tuple[str, int]
    parts: tuple[tuple[str, int], ...]

    @property
    def holds(self) -> bool:
        return self.whole[1] == sum(n for _, n in self.parts)

    def text(self) -> str:
        """``input rows 6 = rows with an identifier 5 + rows with no identifier 1 + ...``."""
        name, n = self.whole
        parts = " + ".join(f"{WORDS.get(p, p)} {k}" for p, k in self.parts)
        return f"{WORDS[name]} {n} = {parts}"


def _check(identities: tuple[Identity, ...]) -> None:
    broken = [i.text() for i in identities if not i.holds]
    if broken:  # a bug: the stages were counted from different data
        raise AssertionError("the accounting does not add up: " + "; ".join(broken))


@dataclass(frozen=True, slots=True)
class InputAccount:
    """One input file against the ledger: what ``validate`` prints and ``run`` plans."""

    rows: int
    with_identifier: int
    no_identifier: int
    blank: int
    identifiers: int  # non-empty identifier cells
    valid: int
    invalid_cells: int
    skipped: int
    pairs: int  # distinct (request id, key) pairs
    duplicates: int
    already_final: int  # pairs whose final outcome is in the ledger
    to_send: int  # pairs a run must finish
    deletes: int  # distinct keys among them: requests a run sends at most (retries aside)
    invalid: int  # invalid records (cells, bad row values, bad dates, rows with no identifier)
    invalid_by_reason: tuple[tuple[str, int], ...]  # reason code, count; sums to ``invalid``
    requests: int  # distinct request ids in the file
    held: int = 0  # pairs a legal hold keeps from being sent (erasure.decisions)
    cancelled: int = 0  # pairs of cancelled requests: never sent

    def identities(self) -> tuple[Identity, ...]:
        return (
            Identity(
                ("rows", self.rows),
                (
                    ("with_identifier", self.with_identifier),
                    ("no_identifier", self.no_identifier),
                    ("blank", self.blank),
                ),
            ),
            Identity(
                ("identifiers", self.identifiers),
                (
                    ("valid", self.valid),
                    ("invalid_cells", self.invalid_cells),
                    ("skipped", self.skipped),
                ),
            ),
            Identity(
                ("valid", self.valid), (("pairs", self.pairs), ("duplicates", self.duplicates))
            ),
            Identity(
                ("pairs", self.pairs),
                (
                    ("already_final", self.already_final),
                    # a person's decisions, named only when there are any
                    *((("held", self.held),) if self.held else ()),
                    *((("cancelled", self.cancelled),) if self.cancelled else ()),
                    ("to_send", self.to_send),
                ),
            ),
            Identity(("invalid", self.invalid), tuple(self._reasons())),
        )

    def _reasons(self) -> list[tuple[str, int]]:
        return [(r, n) for r, n in self.invalid_by_reason]

    def check(self) -> InputAccount:
        """Self, after asserting every identity (a failure is a bug, not the user's)."""
        _check(self.identities())
        return self

    def lines(self) -> list[str]:
        """``validate``'s arithmetic, one identity a line, so that it visibly adds up."""
        out = [i.text() for i in self.identities()[:4]]
        out.append(f"{WORDS['to_send']} {self.to_send} pairs, as {self.deletes} deletes")
        reasons = ", ".join(f"{r} {n}" for r, n in self.invalid_by_reason) or "none"
        out.append(f"{WORDS['invalid']} {self.invalid}: {reasons}")
        return out

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in _INPUT_FIELDS}
        out["invalid_by_reason"] = dict(self.invalid_by_reason)
        return out


_INPUT_FIELDS = tuple(f for f in InputAccount.__slots__ if f != "invalid_by_reason")


def input_account(counts: Any, invalid_reasons: Mapping[str, int], plan: Any) -> InputAccount:
    """From the intake's :class:`~erasure.intake.Counts`, its invalid reasons, and the plan."""
    return InputAccount(
        rows=counts.rows,
        with_identifier=counts.with_identifier,
        no_identifier=counts.no_identifier,
        blank=counts.blank,
        identifiers=counts.identifiers,
        valid=counts.valid,
        invalid_cells=counts.invalid_cells,
        skipped=counts.skipped,
        pairs=counts.pairs,
        duplicates=counts.duplicates,
        already_final=plan.already_done,
        to_send=plan.pairs,
        deletes=plan.to_send,
        invalid=counts.invalid,
        invalid_by_reason=tuple(sorted(invalid_reasons.items())),
        requests=counts.requests,
        held=getattr(plan, "held", 0),
        cancelled=getattr(plan, "cancelled", 0),
    ).check()


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    """The ledger's story: pairs by outcome, requests complete or not and why.

    A request is complete when it has at least one identifier, every one
    ``erased`` or ``not_found``, and no unresolved ``invalid`` record; an
    incomplete one is counted once, under its reason in the partition
    (:mod:`erasure.partition`): ``incomplete_reasons`` holds one count per
    reason, in the partition's order.
    """

    pairs: int
    erased: int
    not_found: int
    rejected: int
    failed: int
    pending: int
    in_doubt: int  # a flag over pairs, not a part of them
    requests: int
    complete: int
    incomplete: int
    incomplete_reasons: Mapping[str, int]  # reason -> requests, every reason, in order
    open_past_deadline: int  # requests (a flag, not a part)
    finished_late: int  # requests (a flag, not a part)
    # requests whose received dates were all unusable: no deadline can be computed (exit 1)
    deadline_unknown: int
    unresolved: int  # unresolved invalid records
    resolved: int
    held: int = 0  # pairs a legal hold keeps from being sent (erasure.decisions)
    cancelled: int = 0  # pairs of cancelled requests

    def identities(self) -> tuple[Identity, ...]:
        return (
            Identity(
                ("pairs", self.pairs),
                tuple((o, getattr(self, o)) for o in _OUTCOMES)
                # a person's decisions, named only when there are any
                + tuple((o, getattr(self, o)) for o in _DECIDED if getattr(self, o)),
            ),
            Identity(
                ("requests", self.requests),
                (("complete", self.complete), ("incomplete", self.incomplete)),
            ),
            Identity(
                ("incomplete", self.incomplete),
                tuple((f"reason_{r}", n) for r, n in self.incomplete_reasons.items()),
            ),
        )

    def check(self) -> LedgerAccount:
        if list(self.incomplete_reasons) != [r.value for r in partition.REASONS]:
            raise AssertionError(f"not the partition's reasons: {list(self.incomplete_reasons)}")
        _check(self.identities())
        return self

    def lines(self) -> list[str]:
        """``status``'s arithmetic, in the words every report uses."""
        return [
            *(i.text() for i in self.identities()),
            f"{WORDS['open_past_deadline']}: {count(self.open_past_deadline, 'request')}; "
            f"{WORDS['finished_late']}: {count(self.finished_late, 'request')}; "
            f"{WORDS['deadline_unknown']}: {count(self.deadline_unknown, 'request')}",
            f"{WORDS['unresolved']}: {self.unresolved} ({WORDS['resolved']}: {self.resolved})",
        ]

    def as_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in LedgerAccount.__slots__}
        out["incomplete_reasons"] = dict(self.incomplete_reasons)
        return out

    @property
    def verdict(self) -> str:
        """The headline in one sentence."""
        if not self.requests:
            return "The ledger holds no request yet."
        if self.complete == self.requests:
            return f"Every request is complete: all {self.requests} fully erased."
        why = [f"{n} {WORDS[f'reason_{r}']}" for r, n in self.incomplete_reasons.items() if n]
        return (
            f"{self.incomplete} of {self.requests} requests are incomplete: " + ", ".join(why) + "."
        )


_OUTCOMES = ("erased", "not_found", "rejected", "failed", "pending")
_DECIDED = ("held", "cancelled")


def ledger_account(pairs: Any, requests: Any, unresolved: int, resolved: int) -> LedgerAccount:
    """From :func:`erasure.status.pairs` and :func:`erasure.status.request_states` (frames)."""
    counts = dict(pairs.group_by("outcome").len().iter_rows()) if pairs.height else {}
    why = dict(requests.group_by("why").len().iter_rows()) if requests.height else {}
    complete = int(why.get(partition.COMPLETE, 0))
    flags = (
        requests.select("open_past_deadline", "finished_late").sum() if requests.height else None
    )
    return LedgerAccount(
        pairs=pairs.height,
        **{o: int(counts.get(o, 0)) for o in _OUTCOMES},
        in_doubt=int(pairs["in_doubt"].sum()) if pairs.height else 0,
        requests=requests.height,
        complete=complete,
        incomplete=requests.height - complete,
        incomplete_reasons={r.value: int(why.get(r.value, 0)) for r in partition.REASONS},
        open_past_deadline=0 if flags is None else int(flags.item(0, 0) or 0),
        finished_late=0 if flags is None else int(flags.item(0, 1) or 0),
        deadline_unknown=int(requests["deadline_unknown"].sum()) if requests.height else 0,
        unresolved=unresolved,
        resolved=resolved,
        **{o: int(counts.get(o, 0)) for o in _DECIDED},
    ).check()


_WHY = (partition.COMPLETE, *(r.value for r in partition.REASONS))


def ledger_account_from_summaries(
    totals: Mapping[str, int],
    *,
    in_doubt: int,
    open_past_deadline: int,
    finished_late: int,
) -> LedgerAccount:
    """The same account as :func:`ledger_account`, from the ledger's kept summaries.

    ``totals`` is the derived ``totals`` table (erasure.ledger.state): pairs
    and one count per outcome, unresolved and all invalid records, and
    ``requests_<why>``, each request counted under its state (the rules of
    :mod:`erasure.partition`, kept by a trigger). ``in_doubt``
    counts pairs; the two deadline flags count requests (erasure.ledger.read).
    Nothing here grows with the ledger's history.
    """
    why = {w: int(totals.get(f"requests_{w}", 0)) for w in _WHY}
    requests = sum(why.values())
    unresolved = int(totals.get("invalid_unresolved", 0))
    return LedgerAccount(
        pairs=int(totals.get("pairs", 0)),
        **{o: int(totals.get(o, 0)) for o in _OUTCOMES},
        in_doubt=in_doubt,
        requests=requests,
        complete=why[partition.COMPLETE],
        incomplete=requests - why[partition.COMPLETE],
        incomplete_reasons={r.value: why[r.value] for r in partition.REASONS},
        open_past_deadline=open_past_deadline,
        finished_late=finished_late,
        deadline_unknown=int(totals.get("deadline_unknown", 0)),
        unresolved=unresolved,
        resolved=int(totals.get("invalid", 0)) - unresolved,
        **{o: int(totals.get(o, 0)) for o in _DECIDED},
    ).check()
