"""Where a file's header is: title rows and group rows above it are skipped.

Helpdesk and CRM exports often put a title ("Выгрузка обращений за ноябрь")
or a row of column groups above the real header. The header is the first of
the first :data:`SEARCH_ROWS` rows that names every mapped column (a
:class:`HeaderRule`); ``[input] header_row`` pins it. When no row qualifies,
the first row is taken, and the column mapping then says what is missing.
A file whose first row is its header reads exactly as it always did.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SEARCH_ROWS = 20  # rows looked at for the header, from the top of the file


def fold(name: str) -> str:
    """A column name as columns are matched: ignoring case and surrounding spaces."""
    return name.strip().casefold()


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """What a header row must name: each of ``every``, and one of ``any_of`` when it has any.

    Names are folded (:func:`fold`). ``pinned`` is the header's row number
    (1 = the first row) when the job says where it is.
    """

    every: frozenset[str]
    any_of: frozenset[str] = frozenset()
    pinned: int | None = None

    @property
    def wanted(self) -> set[str]:
        """Every name the rule knows: a hint for the delimiter sniffer."""
        return set(self.every | self.any_of)

    def named_by(self, cells: Iterable[object]) -> bool:
        """True when a row of these cells names what the rule asks for."""
        names = {fold(c) for c in cells if isinstance(c, str)}
        if not self.every <= names:
            return False
        return not self.any_of or bool(self.any_of & names)

    def describe(self) -> str:
        """The names looked for, in words: ``'email', 'phone' or 'profile_id'``."""
        every = ", ".join(repr(n) for n in sorted(self.every))
        some = " or ".join(repr(n) for n in sorted(self.any_of))
        if every and some:
            return f"{every} and one of {some}"
        return every or some


def csv_lines(sample: str) -> list[str]:
    """The sample's first lines, as polars counts lines (``\\n``; a ``\\r`` before it dropped)."""
    return [line.removesuffix("\r") for line in sample.split("\n")[: SEARCH_ROWS + 1]]


def csv_header_line(sample: str, rule: HeaderRule, separators: Sequence[str]) -> int:
    """The header's line index (0 = the first line) in a CSV sample.

    A line counts when, split by any of ``separators``, it names what the
    rule asks for. No such line among the first :data:`SEARCH_ROWS`: 0.
    """
    if rule.pinned is not None:
        return rule.pinned - 1
    for index, line in enumerate(csv_lines(sample)[:SEARCH_ROWS]):
        for separator in separators:
            try:
                cells = next(csv.reader([line], delimiter=separator), [])
            except csv.Error:
                continue
            if rule.named_by(cells):
                return index
    return 0


def first_naming_row(rows: Iterable[Sequence[object]], rule: HeaderRule) -> int | None:
    """The index of the first of ``rows`` (at most :data:`SEARCH_ROWS`) naming its columns."""
    for index, row in enumerate(rows):
        if index >= SEARCH_ROWS:
            break
        if rule.named_by(row):
            return index
    return None
