"""Why a request is incomplete: one partition, written once as data.

A request is **complete** when it has at least one identifier, every one
``erased`` or ``not_found``, and no unresolved ``invalid`` record. Any
other request is **incomplete** and counted under exactly one
:class:`Reason`: the first, in the contract's order, whose test holds.
Its other problems are listed beside that reason, never counted twice.

The rule is the table :data:`RULES`: one test per reason over a request's
counts (:data:`COUNTS`). Both forms that apply it are generated from it:
:func:`sql` (the derived state's trigger keeps ``totals`` by it, and the
reports read a request's reason by it) and :func:`polars` (a ledger not
yet migrated is read from its events). Status, ``status --json``, every
report, the HTML headline and receipts count with it; none spells a
reason itself. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # polars is imported where the polars form is asked for: the writer never is
    import polars as pl

__all__ = [
    "COMPLETE",
    "COUNTS",
    "DATE_REASON",
    "REASONS",
    "RULES",
    "UNFINISHED_SQL",
    "WORDS",
    "Reason",
    "Rule",
    "deadline_unknown_sql",
    "polars",
    "reason_of",
    "sql",
]


class Reason(enum.StrEnum):
    """Why a request is incomplete: a closed set, in the order the rule takes them."""

    # It named no usable identifier at all (every cell unusable, or none given).
    NO_IDENTIFIER = "no_identifier"
    # A legal hold keeps an identifier of it from being sent (erasure hold).
    HELD = "held"
    # It was withdrawn: an identifier of it ended cancelled (erasure cancel).
    CANCELLED = "cancelled"
    # The service refused an identifier of it: a person must look.
    REJECTED = "rejected"
    # An input cell of it could not be used, and no later input fixed it.
    INVALID = "invalid"
    # An identifier of it is not finished yet (pending, failed, in doubt).
    OPEN = "open"


REASONS: tuple[Reason, ...] = tuple(Reason)
COMPLETE = "complete"  # the state of a request no reason applies to

# A request's counts the rule reads: columns of the derived ``request_state``
# and of :func:`polars`' input, under the same names.
COUNTS = (
    "pairs",  # (request, identifier) pairs
    "erased",
    "not_found",
    "rejected",
    "held",
    "cancelled",
    "invalid_unresolved",  # invalid records no later input resolved
)

# For people: the same words in status, every report and the HTML headline.
WORDS: dict[Reason, str] = {
    Reason.NO_IDENTIFIER: "with no usable identifier",
    Reason.HELD: "held",
    Reason.CANCELLED: "cancelled",
    Reason.REJECTED: "with a rejected identifier",
    Reason.INVALID: "with an unresolved invalid record",
    Reason.OPEN: "still open (pending or failed)",
}


@dataclass(frozen=True, slots=True)
class Test:
    """``sum(left) OP sum(right)`` over :data:`COUNTS` (an empty side is 0)."""

    left: tuple[str, ...]
    op: Literal[">", "="]
    right: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    reason: Reason
    test: Test


# A row is a request at all when it has a pair or an unresolved invalid record.
IS_REQUEST = Test(("pairs", "invalid_unresolved"), ">")
# The partition: the first rule that holds names the request's reason.
RULES: tuple[Rule, ...] = (
    Rule(Reason.NO_IDENTIFIER, Test(("pairs",), "=")),
    Rule(Reason.HELD, Test(("held",), ">")),
    Rule(Reason.CANCELLED, Test(("cancelled",), ">")),
    Rule(Reason.REJECTED, Test(("rejected",), ">")),
    Rule(Reason.INVALID, Test(("invalid_unresolved",), ">")),
    Rule(Reason.OPEN, Test(("pairs",), ">", ("erased", "not_found"))),
)
assert tuple(r.reason for r in RULES) == REASONS, "one rule per reason, in the enum's order"

# An unusable received date is an invalid record (the intake's ``received_at_invalid``),
# but never the partition's ``invalid``: the erasure does not depend on it. A request
# whose received dates are all unusable has an unknown deadline instead, reported beside
# the partition (exit 1), never making an erased request incomplete.
DATE_REASON = "received_at_invalid"


# SQL over request_state: a request not finished, whose deadline can pass while open:
# a pair without a final outcome, or no usable identifier at all (nothing was ever sent)
UNFINISHED_SQL = (
    "(pairs - erased - not_found - rejected > 0 OR (pairs = 0 AND invalid_unresolved > 0))"
)


def deadline_unknown_sql(row: str) -> str:
    """SQL: whether the request_state row ``row`` has only unusable received dates."""
    return f"({row}.dates_unresolved > 0 AND {row}.received_min IS NULL)"


# ---------------------------------------------------------------- generated forms


def _sql_side(row: str, names: tuple[str, ...]) -> str:
    return "(" + " + ".join(f"{row}.{n}" for n in names) + ")" if names else "0"


def _sql_test(row: str, test: Test) -> str:
    return f"{_sql_side(row, test.left)} {test.op} {_sql_side(row, test.right)}"


def sql(row: str) -> str:
    """SQL: the state of the row ``row`` (a table alias, ``NEW``, ``OLD``) with :data:`COUNTS`.

    NULL when the row is no request; else the first :class:`Reason` that
    holds, or ``complete``.
    """
    whens = " ".join(f"WHEN {_sql_test(row, r.test)} THEN '{r.reason.value}'" for r in RULES)
    return f"(CASE WHEN NOT ({_sql_test(row, IS_REQUEST)}) THEN NULL {whens} ELSE '{COMPLETE}' END)"


def _pl_side(names: tuple[str, ...]) -> pl.Expr:
    import polars as pl

    return pl.sum_horizontal(*(pl.col(n) for n in names)) if names else pl.lit(0)


def _pl_test(test: Test) -> pl.Expr:
    left, right = _pl_side(test.left), _pl_side(test.right)
    return left > right if test.op == ">" else left == right


def polars() -> pl.Expr:
    """Polars: the same state as :func:`sql`, over a frame with :data:`COUNTS` columns."""
    import polars as pl

    chain: Any = pl.when(~_pl_test(IS_REQUEST)).then(pl.lit(None, pl.String))
    for rule in RULES:
        chain = chain.when(_pl_test(rule.test)).then(pl.lit(rule.reason.value))
    expr: pl.Expr = chain.otherwise(pl.lit(COMPLETE))
    return expr


def _py_side(counts: dict[str, int], names: tuple[str, ...]) -> int:
    return sum(int(counts.get(n, 0)) for n in names)


def _py_test(counts: dict[str, int], test: Test) -> bool:
    left, right = _py_side(counts, test.left), _py_side(counts, test.right)
    return left > right if test.op == ">" else left == right


def reason_of(counts: dict[str, int]) -> Reason | None:
    """One request's reason from its :data:`COUNTS` (a receipt's), or None when complete."""
    for rule in RULES:
        if _py_test(counts, rule.test):
            return rule.reason
    return None
