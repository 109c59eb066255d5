"""An XLSX workbook bounded by what it really holds, before the reader sees it.

The Excel reader (calamine, through fastexcel) sizes its grid from the cells
present: one cell at ``XFD1048576`` makes it allocate rows × columns for the
whole span (512 GiB: the process aborts), a cell at ``ZZ200000`` costs
5 GB. A sheet's ``<dimension>`` is optional and may lie, so it is not
trusted: :func:`check` streams the first sheet's XML and the shared strings
through expat, counting as it goes, and stops at the first limit passed:

* the greatest row, the greatest column, and the grid the cells span
  (what the reader will allocate);
* the cells present, the shared strings and the characters of each one
  (Excel's own cell limit, 32,767);
* the bytes unpacked from the archive, whatever its entries declare.

Memory stays flat: no element tree is built, a string's length is counted
as its characters arrive. A part with a document type declaration is
refused outright (no workbook has one; it is how entity expansion attacks
begin), which is stricter than what defusedxml allows and needs none of
its machinery. The same pass finds the header's row number (the first
cell with a value), which the reader's frame does not carry.

Cost: about 2.5 µs a cell on this machine, five times the read itself
(``bench/xlsx_guard.py``); the deletes it guards take 50 ms each at 20 a second.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any
from xml.parsers import expat

from erasure.errors import InputUnusable

MAX_ROW = 1_048_576  # Excel's own last row
MAX_COLUMN = 16_384  # Excel's own last column (XFD)
MAX_GRID = 16_000_000  # cells in the span the reader allocates (about 32 bytes each: 512 MB)
MAX_CELLS = MAX_GRID  # cells present in the sheet
MAX_STRINGS = MAX_GRID  # shared strings
MAX_STRING = 32_767  # characters in one cell or shared string (Excel's own limit)
MAX_UNPACKED = 2 * 1024**3  # bytes unpacked from the archive: sheet, shared strings, the rest
MAX_PARTS = 10_000  # entries in the archive

_REL_ID = "http://schemas.openxmlformats.org/officeDocument/2006/relationships id"
_STRICT_REL_ID = "http://purl.oclc.org/ooxml/officeDocument/relationships id"
_DIGITS = "0123456789"
_CHUNK = 64 * 1024  # bytes unpacked and fed to the parser at a time


class TooBig(Exception):
    """A limit was passed; the message says which, in words."""


class _Refused(Exception):
    """A part the tool will not parse (a DTD)."""


@dataclass(frozen=True, slots=True)
class Extent:
    """What the first sheet really holds."""

    first_row: int  # the row number of the first cell with a value (1 when none)
    rows: int  # the greatest row number of a cell
    columns: int  # the greatest column number of a cell
    cells: int  # cells present
    unpacked: int  # bytes unpacked (all parts read)


def check(path: Any, name: str) -> Extent:
    """The extent of the workbook at ``path`` (``name`` for messages).

    Raises :class:`~erasure.errors.InputUnusable` (65) for a workbook over a
    limit, with a DTD, or that cannot be parsed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return _check(archive)
    except TooBig as exc:
        raise InputUnusable(f"{name} is refused: {exc} (see the README's Limits)") from None
    except (_Refused, expat.ExpatError, KeyError, ValueError, zipfile.BadZipFile):
        raise InputUnusable(f"{name} cannot be read as an XLSX workbook") from None
    except (EOFError, zipfile.LargeZipFile, NotImplementedError):  # truncated, zip64, a codec
        raise InputUnusable(f"{name} cannot be read as an XLSX workbook") from None
    except zlib.error:  # a damaged deflate stream (found by tests/hostile's property tests)
        raise InputUnusable(f"{name} cannot be read as an XLSX workbook: it is damaged") from None


def _check(archive: zipfile.ZipFile) -> Extent:
    infos = archive.infolist()
    if len(infos) > MAX_PARTS:
        raise TooBig(f"the archive has more than {MAX_PARTS:,} parts")
    budget = _Budget()
    sheet, strings = _first_sheet(archive, budget)
    names = set(archive.namelist())
    if strings is not None and strings in names:
        _parse(archive, strings, _Strings(), budget)
    cells = _Cells()
    _parse(archive, sheet, cells, budget)
    # Every other part may be read by the reader too (styles, themes): unpacked and counted.
    for info in infos:
        if info.filename in (sheet, strings) or info.filename.startswith("xl/worksheets/"):
            continue
        with archive.open(info) as part:
            while chunk := part.read(_CHUNK):
                budget.spend(len(chunk))
    return Extent(cells.first_row or 1, cells.max_row, cells.max_col, cells.count, budget.spent)


class _Budget:
    """Bytes unpacked so far, across parts."""

    def __init__(self) -> None:
        self.spent = 0

    def spend(self, n: int) -> None:
        self.spent += n
        if self.spent > MAX_UNPACKED:
            raise TooBig(f"it unpacks to more than {MAX_UNPACKED // 1024**2:,} MiB")


def _first_sheet(archive: zipfile.ZipFile, budget: _Budget) -> tuple[str, str | None]:
    """The first sheet's part name and the shared strings' (if any)."""
    book = _Attributes("sheet", namespaces=True)
    _parse(archive, "xl/workbook.xml", book, budget)
    rels = _Attributes("Relationship", namespaces=True)
    _parse(archive, "xl/_rels/workbook.xml.rels", rels, budget)
    if not book.found:
        raise ValueError("no sheet")
    first = book.found[0]
    rid = first.get(_REL_ID) or first.get(_STRICT_REL_ID)
    targets = {r.get("Id"): r.get("Target", "") for r in rels.found}
    sheet = _part(targets[rid])
    strings = next(
        (
            _part(r.get("Target", ""))
            for r in rels.found
            if (r.get("Type") or "").endswith("/sharedStrings")
        ),
        None,
    )
    return sheet, strings


def _part(target: str) -> str:
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _refuse(*_: object) -> None:
    raise _Refused("a document type declaration")


def _refuse_entity(*_: object) -> int:
    raise _Refused("an external entity")


def _parse(archive: zipfile.ZipFile, name: str, handler: Any, budget: _Budget) -> None:
    """Stream one part through expat into ``handler``, charging what is unpacked."""
    parser = expat.ParserCreate(namespace_separator=" " if handler.namespaces else None)
    parser.buffer_text = True
    parser.buffer_size = _CHUNK
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.StartElementHandler = handler.start
    if hasattr(handler, "end"):
        parser.EndElementHandler = handler.end
    if hasattr(handler, "characters"):
        parser.CharacterDataHandler = handler.characters
    with archive.open(name) as raw:
        _feed(raw, parser, budget)


def _feed(raw: IO[bytes], parser: Any, budget: _Budget) -> None:
    while chunk := raw.read(_CHUNK):
        budget.spend(len(chunk))
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _local(name: str) -> str:
    """An element's name without its prefix or namespace (``x:c`` and ``c`` alike)."""
    return name[max(name.rfind(":"), name.rfind(" ")) + 1 :]


class _Attributes:
    """The attributes of every element with the wanted local name."""

    def __init__(self, want: str, *, namespaces: bool) -> None:
        self.want = want
        self.namespaces = namespaces
        self.found: list[dict[str, str]] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if _local(name) == self.want:
            self.found.append(dict(attrs))


class _Strings:
    """Counts shared strings and the characters of each as they arrive."""

    namespaces = False

    def __init__(self) -> None:
        self.count = 0
        self.length = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if _local(name) == "si":
            self.count += 1
            self.length = 0
            if self.count > MAX_STRINGS:
                raise TooBig(f"it has more than {MAX_STRINGS:,} shared strings")

    def characters(self, content: str) -> None:
        self.length += len(content)
        if self.length > MAX_STRING:
            raise TooBig(f"a shared string is longer than {MAX_STRING:,} characters")


class _Cells:
    """The sheet's real extent: rows, columns, cells, from the cells present."""

    namespaces = False

    def __init__(self) -> None:
        self.row = 0  # the current row's number
        self.col = 0  # the last cell's column number in the current row
        self.min_row = 0
        self.min_col = 0
        self.max_row = 0
        self.max_col = 0
        self.count = 0
        self.first_row = 0  # the first row with a value
        self.in_cell = False
        self.length = 0
        self._columns: dict[str, int] = {}  # column letters seen, and their numbers

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name if ":" not in name else _local(name)
        if local == "c":
            self._cell(attrs.get("r"))
        elif local == "row":
            number = attrs.get("r")
            self.row = int(number) if number and number.isdigit() else self.row + 1
            self.col = 0
            if self.row > MAX_ROW:
                raise TooBig(f"a row lies beyond row {MAX_ROW:,}")
        elif not self.first_row and self.in_cell and local in ("v", "is"):
            self.first_row = self.row

    def end(self, name: str) -> None:
        if name == "c" or name.endswith(":c"):
            self.in_cell = False

    def characters(self, content: str) -> None:
        if self.in_cell:
            self.length += len(content)
            if self.length > MAX_STRING:
                raise TooBig(f"a cell holds more than {MAX_STRING:,} characters")

    def _cell(self, ref: str | None) -> None:
        self.in_cell = True
        self.length = 0
        if ref:
            letters = ref.rstrip(_DIGITS)
            if len(letters) < len(ref):  # the row is named: trust the cell over its row
                row = int(ref[len(letters) :])
                if row != self.row:
                    self.row = row
                    if row > MAX_ROW:
                        raise TooBig(f"a row lies beyond row {MAX_ROW:,}")
            if not letters:
                col = self.col + 1
            elif (col := self._columns.get(letters, 0)) == 0:
                col = self._columns[letters] = _column(letters)
        else:
            col = self.col + 1
        self.col = col
        if col > MAX_COLUMN:
            raise TooBig(f"a cell lies beyond column {MAX_COLUMN:,} (XFD)")
        self.count += 1
        if self.count > MAX_CELLS:
            raise TooBig(f"its first sheet has more than {MAX_CELLS:,} cells")
        row = self.row
        if col > self.max_col or col < self.min_col or row > self.max_row or row < self.min_row:
            self._widen(row, col)

    def _widen(self, row: int, col: int) -> None:
        self.min_col = col if not self.min_col else min(self.min_col, col)
        self.max_col = max(self.max_col, col)
        self.min_row = row if not self.min_row else min(self.min_row, row)
        self.max_row = max(self.max_row, row)
        rows = self.max_row - self.min_row + 1
        cols = self.max_col - self.min_col + 1
        if rows * cols > MAX_GRID:
            raise TooBig(
                f"its cells span {rows:,} rows × {cols:,} columns, more than {MAX_GRID:,} cells"
            )


def _column(letters: str) -> int:
    """``A`` is 1, ``XFD`` 16,384; anything but one to three letters is malformed."""
    if not (0 < len(letters) <= 3 and letters.isascii() and letters.isalpha()):
        raise ValueError(f"not a column: {letters!r}")
    number = 0
    for c in letters.upper():
        number = number * 26 + ord(c) - 64
    return number
