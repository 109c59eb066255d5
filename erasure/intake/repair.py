"""Repairs of identifier cells whose intent is certain, and cells of several addresses.

Real exports carry ``mailto:`` links, addresses in quotes or angle brackets,
``"Petrov, Ivan" <ivan@x.ru>`` from Outlook and Excel, a domain's trailing
dot, and phones dialled with the international prefix ``00`` (or ``8 10`` in
Russia). Each of these has one reading, so it is repaired and counted by kind
(:class:`Repair`); a cell naming two or more different addresses is not: the
second may be a CC, a lawyer or a relative who never asked. It is an invalid
record, ``several_addresses``, unless ``[input] split_addresses = true``
makes it one identifier per address.

A repair is tried only on a cell the strict rules of :mod:`.normalize`
refused, so no cell that was valid before reads differently now, and no key
an earlier release computed changes: the rules only turn invalid cells into
valid ones (``tests/test_repair.py`` proves it over the corpus). A refusal
names the fault found in what the cell holds, never the cell's value.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

import polars as pl

from erasure.intake import normalize
from erasure.intake.normalize import Invalid


class Repair(enum.StrEnum):
    """What was repaired in a cell: a closed set, counted by ``validate``."""

    MAILTO = "mailto"  # a mailto: link (one address, no parameters)
    QUOTED = "quoted"  # the address in quotes or angle brackets
    DISPLAY_NAME = "display_name"  # "Petrov, Ivan" <ivan@x.ru>: the name dropped
    TRAILING_DOT = "trailing_dot"  # ivan@x.ru.: the domain's final dot dropped
    SPLIT = "split"  # several addresses, one identifier each (split_addresses = true)
    INTERNATIONAL_PREFIX = "international_prefix"  # 00 or 8 10 read as +


SEVERAL_ADDRESSES = "several_addresses"  # the invalid record's reason code

# What separates the addresses of a cell: spaces, brackets, quotes and list separators.
_BETWEEN = re.compile(r"[\s<>\"',;:()\[\]]+")
CELL_MAX = 4096  # characters: a longer cell is not repaired (it is no list of addresses)
_QUOTED = re.compile(r"^([\"'«“])(.+)([\"'»”])$", re.S)
_BRACKETED = re.compile(r"^<([^<>]+)>$")
_NAMED = re.compile(r"^(.+?)\s*<([^<>]+)>$", re.S)
_CLOSING = {'"': '"', "'": "'", "«": "»", "“": "”"}


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell read: its values (several only when split), or why it was refused."""

    values: tuple[str, ...] = ()
    reason: str | None = None  # words, never the value
    code: str | None = None  # a reason code other than the column's own (several_addresses)
    repairs: tuple[Repair, ...] = ()


def email_cell(raw: str, *, split: bool = False) -> Cell:
    """An email cell as :func:`normalize.email` reads it, else repaired where intent is sure."""
    try:
        return Cell((normalize.email(raw),))
    except Invalid as exc:
        if exc.reason == "empty":
            return Cell()
        first = exc.reason
    if len(raw) > CELL_MAX:
        return Cell(reason=first)
    value = normalize.clean(raw)
    repairs: list[Repair] = []
    if value[:7].lower() == "mailto:":
        value = value[7:]
        if "?" in value or "," in value or ";" in value:
            return Cell(
                reason="a mailto: link with parameters or several addresses: "
                "write the one address alone"
            )
        repairs.append(Repair.MAILTO)
    found = _distinct_addresses(value)
    if len(found) > 1:
        if not split:
            return Cell(
                reason=f"holds {len(found)} different addresses: one per cell (a second may be "
                "a CC or a relative who never asked), or set [input] split_addresses = true",
                code=SEVERAL_ADDRESSES,
            )
        values = []
        for i, part in enumerate(found, 1):
            one = _one_address(part)
            if not one.values:
                return Cell(reason=f"address {i} of {len(found)} in the cell: {one.reason}")
            values.append(one.values[0])
            repairs += one.repairs
        return Cell(tuple(dict.fromkeys(values)), repairs=_kinds([*repairs, Repair.SPLIT]))
    one = _one_address(value)
    if one.values and (repairs or one.repairs):
        return Cell(one.values, repairs=_kinds([*repairs, *one.repairs]))
    if repairs or one.repairs:  # a shape was recognised: say what is wrong inside it
        return Cell(reason=one.reason)
    return Cell(reason=first)


def _kinds(repairs: list[Repair]) -> tuple[Repair, ...]:
    return tuple(dict.fromkeys(repairs))


def _distinct_addresses(value: str) -> list[str]:
    """The address-shaped parts of a cell, once each (ignoring case)."""
    seen: dict[str, str] = {}
    for part in _BETWEEN.split(value):  # linear: no pattern that can backtrack
        if "@" in part.strip("@"):
            seen.setdefault(part.rstrip(".").casefold(), part)
    return list(seen.values())


def _one_address(value: str) -> Cell:
    """One address, unwrapped from quotes, angle brackets or a display name; a final dot dropped."""
    repairs: list[Repair] = []
    quoted = _QUOTED.match(value)
    if quoted and _CLOSING[quoted.group(1)] == quoted.group(3):
        value, repairs = quoted.group(2).strip(), [Repair.QUOTED]
    if bracketed := _BRACKETED.match(value):
        value, repairs = bracketed.group(1).strip(), [*repairs, Repair.QUOTED]
    elif named := _NAMED.match(value):
        # the stdlib reads the name; "a@x.ru <a@x.ru>" has the address as its name
        name, address = parseaddr(value)
        inner, before = named.group(2).strip(), named.group(1).strip().strip("\"'")
        if address == inner and (name or before.casefold() == inner.casefold()):
            value, repairs = address, [*repairs, Repair.DISPLAY_NAME]
    if value.endswith(".") and "@" in value and not value.endswith(".."):
        try:
            normalize.email(value)
        except Invalid:
            value, repairs = value[:-1], [*repairs, Repair.TRAILING_DOT]
    try:
        return Cell((normalize.email(value),), repairs=_kinds(repairs))
    except Invalid as exc:
        return Cell(reason=exc.reason, repairs=_kinds(repairs))


# International dialling prefixes written where a + was meant: 00 everywhere, 8 10 in Russia.
_INTERNATIONAL = {"RU": re.compile(r"^(?:00|8[\s\-()]*10)[\s\-()]*(?=[1-9])")}
_ZERO_ZERO = re.compile(r"^00[\s\-()]*(?=[1-9])")


def phone_cell(raw: str, region: str) -> Cell:
    """A phone cell as :func:`normalize.phone` reads it, else ``00``/``8 10`` read as ``+``."""
    try:
        return Cell((normalize.phone(raw, region),))
    except Invalid as exc:
        if exc.reason == "empty":
            return Cell()
        first = exc.reason
    value = normalize.clean(raw)
    prefix = _INTERNATIONAL.get(region, _ZERO_ZERO).match(value)
    if prefix is None:
        return Cell(reason=first)
    try:
        e164 = normalize.phone("+" + value[prefix.end() :], region)
    except Invalid as exc:
        return Cell(reason=f"dialled from abroad (+), but the {exc.reason}")
    return Cell((e164,), repairs=(Repair.INTERNATIONAL_PREFIX,))


# ---------------------------------------------------------------- columns

# The frame :func:`emails` and :func:`phones` return, one row per cell: ``value``
# (the first value), ``reason``, ``code`` (null: the column's own), ``repair``
# (the kinds, comma-separated) and ``extra`` (further values of a split cell).
CELL_SCHEMA = pl.Schema(
    [
        ("value", pl.String()),
        ("reason", pl.String()),
        ("code", pl.String()),
        ("repair", pl.String()),
        ("extra", pl.List(pl.String())),
    ]
)


def emails(raw: pl.Series, *, split: bool = False) -> pl.DataFrame:
    """:func:`email_cell` over a column: :func:`normalize.emails`, then the refused cells."""
    return _repaired(raw, normalize.emails(raw), lambda v: email_cell(v, split=split))


def phones(raw: pl.Series, region: str) -> pl.DataFrame:
    """:func:`phone_cell` over a column: :func:`normalize.phones`, then the refused cells."""
    return _repaired(raw, normalize.phones(raw, region), lambda v: phone_cell(v, region))


def _repaired(raw: pl.Series, found: pl.DataFrame, read: Callable[[str], Cell]) -> pl.DataFrame:
    """``found`` (value, reason) with the refused cells read again by ``read``."""
    refused = found.get_column("reason").is_not_null()
    if not refused.any():
        return found.with_columns(
            code=pl.lit(None, pl.String),
            repair=pl.lit(None, pl.String),
            extra=pl.lit(None, pl.List(pl.String)),
        )
    todo = refused.arg_true()
    distinct = raw.gather(todo).unique(maintain_order=True).to_list()
    cells = [read(v) for v in distinct]
    table = pl.DataFrame(
        {
            "raw": distinct,
            "value": [c.values[0] if c.values else None for c in cells],
            "reason": [c.reason for c in cells],
            "code": [c.code for c in cells],
            "repair": [",".join(c.repairs) or None for c in cells],
            "extra": [list(c.values[1:]) or None for c in cells],
        },
        schema={"raw": pl.String, **CELL_SCHEMA},
    )
    again = (
        raw.gather(todo)
        .rename("raw")
        .to_frame()
        .join(table, on="raw", how="left", maintain_order="left")
        .drop("raw")
        .with_columns(i=todo.cast(pl.UInt32), again=pl.lit(True))
    )
    merged = (
        found.with_row_index("i")
        .join(again, on="i", how="left", suffix="_again", maintain_order="left")
        .with_columns(pl.col("again").fill_null(False))
    )
    kept = {"value": pl.col("value"), "reason": pl.col("reason")}
    return merged.select(
        [
            pl.when("again")
            .then(pl.col(f"{name}_again" if name in kept else name))
            .otherwise(kept.get(name, pl.lit(None, dtype)))
            .alias(name)
            for name, dtype in CELL_SCHEMA.items()
        ]
    )
