"""Mapping the job's columns onto a file's headers: which column holds what."""

from __future__ import annotations

import re
from dataclasses import dataclass

from erasure.errors import InputUnusable
from erasure.intake.header import HeaderRule, fold
from erasure.job import Input, Matching


@dataclass(frozen=True, slots=True)
class Spec:
    """One identifier column of the file and how its values are matched."""

    matching: Matching
    column: str
    field_name: str | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the job's columns are in this file: identifier specs and the named columns."""

    specs: tuple[Spec, ...]
    db_id: str | None
    resource_id: str | None
    request_id: str | None
    received_at: str | None

    @property
    def varying(self) -> list[str]:
        """The identity columns that can differ between rows (the rest are constant)."""
        return [
            name
            for name, varies in (
                ("request_id", self.request_id is not None),
                ("db_id", self.db_id is not None),
                ("matching", len({s.matching for s in self.specs}) > 1),
                ("resource_id", self.resource_id is not None and len(self.specs) > 0),
                ("field_name", len({s.field_name for s in self.specs}) > 1),
            )
            if varies
        ]

    @property
    def columns(self) -> list[str]:
        named: list[str | None] = [s.column for s in self.specs]
        named += [self.db_id, self.resource_id, self.request_id, self.received_at]
        return list(dict.fromkeys(c for c in named if c is not None))


# ---------------------------------------------------------------- columns


def wanted_columns(inp: Input) -> set[str]:
    """Column names the job asks for, case-folded: a hint for the delimiter sniffer."""
    cols = inp.columns
    names: list[str | None] = [cols.email, cols.phone, cols.profile_id]
    names += [c.column for c in cols.custom]
    if not cols.explicit:
        names += ["email", "phone", "profile_id"]
    names += [inp.db_id_column, inp.resource_id_column, inp.request_id_column]
    names += [inp.received_at_column]
    return {n.strip().casefold() for n in names if n}


def header_rule(inp: Input) -> HeaderRule:
    """What the input's header row names: every mapped column (one of the defaults, unmapped)."""
    cols = inp.columns
    named: list[str | None] = [inp.db_id_column, inp.resource_id_column]
    named += [inp.request_id_column, inp.received_at_column]
    any_of: frozenset[str] = frozenset()
    if cols.explicit:
        named += [cols.email, cols.phone, cols.profile_id, *(c.column for c in cols.custom)]
    else:
        any_of = frozenset(DEFAULT_NAMES)
    every = frozenset(fold(n) for n in named if n)
    return HeaderRule(every, any_of, inp.header_row)


DEFAULT_NAMES: tuple[Matching, ...] = ("email", "phone", "profile_id")  # any case, unmapped


def map_columns(inp: Input, names: list[str], file: str) -> Layout:
    cols = inp.columns
    specs: list[Spec] = []
    if cols.explicit:
        mapped: tuple[tuple[Matching, str | None], ...] = (
            ("email", cols.email),
            ("phone", cols.phone),
            ("profile_id", cols.profile_id),
        )
        for matching, name in mapped:
            if name:
                specs.append(
                    Spec(matching, find_column(names, name, f"input.columns.{matching}", file))
                )
        for custom in cols.custom:
            column = find_column(names, custom.column, "input.columns.custom", file)
            specs.append(Spec("custom", column, custom.field_name))
    else:
        defaults: tuple[Matching, ...] = ("email", "phone", "profile_id")
        for matching in defaults:
            found = [n for n in names if n.strip().casefold() == matching]
            if len(found) > 1:
                raise InputUnusable(
                    f"{file}: more than one column is named {matching} ({_list(found)});"
                    " map one in [input.columns]"
                )
            if found:
                specs.append(Spec(matching, found[0]))
        if not specs:
            raise InputUnusable(
                f"{file} has no identifier column: none is named email, phone or profile_id"
                f" (any case); its columns are {_list(names)}; map yours in [input.columns]"
            )

    def optional(name: str | None, key: str) -> str | None:
        return None if name is None else find_column(names, name, f"input.{key}", file)

    return Layout(
        specs=tuple(specs),
        db_id=optional(inp.db_id_column, "db_id_column"),
        resource_id=optional(inp.resource_id_column, "resource_id_column"),
        request_id=optional(inp.request_id_column, "request_id_column"),
        received_at=optional(inp.received_at_column, "received_at_column"),
    )


def find_column(names: list[str], wanted: str, key: str, file: str) -> str:
    """The file's column for ``wanted``: exact, else the one equal ignoring case and spaces."""
    found = [wanted] if wanted in names else []
    if not found:
        folded = wanted.strip().casefold()
        found = [n for n in names if n.strip().casefold() == folded]
    if not found:
        raise InputUnusable(
            f"{file} has no column {shown(wanted)} (named by {key}); its columns are {_list(names)}"
        )
    if len(found) > 1 or any(
        re.fullmatch(re.escape(found[0]) + r"_duplicated_\d+", n) for n in names
    ):
        raise InputUnusable(f"{file}: column {shown(wanted)} ({key}) appears more than once")
    return found[0]


_REDACTED = "<a value that looks like an identifier>"


def shown(name: str) -> str:
    """A column name fit for a message: short, and never a cell that looks like data."""
    if "@" in name or len(re.findall(r"\d", name)) >= 6:
        return _REDACTED
    return repr(name if len(name) <= 40 else name[:40] + "…")


def _list(names: list[str]) -> str:
    if not names:
        return "(none)"
    heads = [shown(n) for n in names[:20]]
    text = ", ".join(heads) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return text + (" (is the header row missing?)" if _REDACTED in heads else "")
