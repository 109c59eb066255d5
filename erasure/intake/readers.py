"""Reading a request file: sniffing its format, encoding and delimiter; a lazy table."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeAlias

import polars as pl

from erasure import jsonbounds
from erasure.errors import InputUnusable
from erasure.files import open_regular
from erasure.intake import workbook
from erasure.intake.header import SEARCH_ROWS, HeaderRule, csv_header_line, first_naming_row

# ---------------------------------------------------------------- readers

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_CHUNK = 1 << 20  # bytes read at a time
_SAMPLE = 1 << 16  # bytes looked at to sniff the encoding and delimiter
_MAGIC = {
    b"PK\x03\x04": "a ZIP file (an XLSX workbook?)",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 (.xls) or password-protected workbook",
    b"\x1f\x8b": "gzip-compressed",
    b"%PDF": "a PDF document",
}
_RUSSIAN = re.compile("[А-яЁёІіЇїЄєҐґЎў«»—–№\u00a0“”„‘’…•°]")
_CYRILLIC_WORD = re.compile(r"\w*[А-яЁё]\w*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# The encodings a CSV file is read in: a closed set.
CsvEncoding: TypeAlias = Literal["UTF-8", "UTF-16", "cp1251"]


@dataclass(frozen=True, slots=True)
class Table:
    """A file opened lazily: its columns known, its cells not yet read."""

    file: str  # the file's name, for messages
    sha256: str
    frame: pl.LazyFrame
    names: list[str]
    what: str  # how it was read, for messages: "CSV (cp1251, delimiter ';')"
    first_row: int  # row number of the first record
    lines: list[int] | None = None  # NDJSON: the line number of each record
    header_row: int | None = None  # CSV, XLSX: the header's row number (title rows above it)
    # CSV: the text encoding it was read in (screen writes its copy in the same one)
    encoding: CsvEncoding | None = None

    def collect(self, columns: list[str]) -> pl.DataFrame:
        try:
            return self.frame.select(columns).collect()
        except pl.exceptions.PolarsError:
            raise InputUnusable(
                f"{self.file} cannot be read as {self.what}: it is damaged or malformed"
                " (a quote that never closes?)"
            ) from None

    def row_numbers(self, n: int) -> pl.Series:
        if self.lines is not None:
            return pl.Series(self.lines, dtype=pl.Int64)
        return pl.int_range(self.first_row, self.first_row + n, dtype=pl.Int64, eager=True)


def read_table(path: Path, wanted: set[str], header: HeaderRule | None = None) -> Table:
    """``path`` opened lazily; ``header`` says what its header row names (:mod:`.header`)."""
    try:
        with open_regular(path, "input file") as f:  # a FIFO or /dev/zero: 65, never a hang
            head = f.read(_SAMPLE)
    except OSError as exc:
        raise InputUnusable(f"input file {path} cannot be read: {exc.strerror}") from None
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputUnusable(
            f"{path.name}: unsupported file type {path.suffix or '(no suffix)'!r};"
            " use .csv, .tsv, .parquet, .xlsx, .ndjson or .jsonl"
        )
    if not head:
        raise InputUnusable(f"{path.name} is empty")
    try:
        if kind == "xlsx":
            return _xlsx(path, head, header)
        if kind == "parquet":
            return _parquet(path, head)
        for magic, what in _MAGIC.items():
            if head.startswith(magic):
                raise InputUnusable(f"{path.name} is {what}, not {kind.upper()} text")
        if kind == "ndjson":
            return _ndjson(path)
        return _csv(path, head, wanted, header)
    except OSError as exc:  # read once, then failing: a disk error, a file removed
        raise InputUnusable(f"input file {path} cannot be read: {exc.strerror}") from None


def _digest(path: Path, check_utf8: bool) -> tuple[str, bool]:
    """The file's SHA-256 (hex) and, when asked, whether it is valid UTF-8."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = check_utf8
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return digest.hexdigest(), utf8


def _schema(frame: pl.LazyFrame, file: str, what: str) -> list[str]:
    try:
        return frame.collect_schema().names()
    except pl.exceptions.NoDataError:
        raise InputUnusable(f"{file} has no header row") from None
    except pl.exceptions.PolarsError:
        raise InputUnusable(f"{file} cannot be read as {what}") from None


def _csv(path: Path, head: bytes, wanted: set[str], header: HeaderRule | None) -> Table:
    sha256, utf8 = _digest(path, check_utf8=True)
    source: Path | bytes = path
    encoding: CsvEncoding
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = path.read_bytes().decode("utf-16")
        except UnicodeDecodeError:
            raise InputUnusable(f"{path.name} starts like UTF-16 text but is not") from None
        encoding, source, sample = "UTF-16", text.encode(), text[:_SAMPLE]
    elif b"\x00" in head:
        raise InputUnusable(f"{path.name} holds NUL bytes: it is a binary file, not CSV text")
    elif utf8:
        encoding = "UTF-8"
        sample = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")
    else:
        decoded = _cp1251(path.read_bytes())
        if decoded is None:
            raise InputUnusable(
                f"{path.name} is neither UTF-8 nor Windows-1251 (cp1251) text; save it as CSV UTF-8"
            )
        text = decoded
        encoding, source, sample = "cp1251", text.encode(), text[:_SAMPLE]
    if len(_CONTROL.findall(sample)) > 8 + len(sample) // 1000:  # a stray ^Z is no reason
        raise InputUnusable(f"{path.name} holds control characters: it is not CSV text")
    truncated = path.stat().st_size > _SAMPLE
    tsv = path.suffix.lower() == ".tsv"
    # title rows above the header: skipped, and the delimiter sniffed from the header on
    skip = 0 if header is None else csv_header_line(sample, header, _separators(tsv))
    rest = sample.split("\n", skip)[-1] if skip else sample
    separator = _sniff(rest, wanted, tsv, truncated)
    what = f"CSV ({encoding}, delimiter {separator!r})"
    frame = pl.scan_csv(
        source,
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=True,
        quote_char='"',
        skip_lines=skip,
    )
    names = _schema(frame, path.name, what)
    if not any(n.strip() for n in names):
        raise InputUnusable(f"{path.name} has no header row")
    return Table(
        path.name,
        sha256,
        frame,
        names,
        what,
        first_row=skip + 2,
        header_row=skip + 1,
        encoding=encoding,
    )


def _separators(tsv: bool) -> list[str]:
    """The delimiters tried, in order of preference."""
    return ["\t", ",", ";", "|"] if tsv else [",", ";", "\t", "|"]


def _cp1251(data: bytes) -> str | None:
    """``data`` as Windows-1251 text when it plausibly is (mostly Cyrillic), else None."""
    try:
        text = data.decode("cp1251")
    except UnicodeDecodeError:
        return None
    sample = text[: 4 * _CHUNK]
    foreign = [c for c in sample if ord(c) > 0x7F]
    russian = len(_RUSSIAN.findall(sample))
    if not foreign or russian < 0.9 * len(foreign):
        return None
    # Latin-1 read as cp1251 turns "José" into "Josй": Latin and Cyrillic in one word
    words = _CYRILLIC_WORD.findall(sample)
    mixed = sum(1 for w in words if re.search("[A-Za-z]", w))
    return None if mixed > 0.1 * len(words) else text


def _sniff(sample: str, wanted: set[str], tsv: bool, truncated: bool) -> str:
    """The delimiter that best splits the header and the first rows alike.

    The header that holds the most of the job's column names wins; then one
    that splits into several columns, with the rows agreeing, and the most
    columns; ties go to the usual order (tab first for .tsv).
    """
    candidates = _separators(tsv)
    best: tuple[tuple[int, bool, bool, int, int], str] | None = None
    for rank, separator in enumerate(candidates):
        try:
            rows = list(itertools.islice(csv.reader(io.StringIO(sample), delimiter=separator), 50))
        except csv.Error:
            continue
        if truncated and len(rows) > 1:
            rows = rows[:-1]  # probably cut short by the sample
        if not rows:
            continue
        header, data = rows[0], [r for r in rows[1:] if r]
        n = len(header)
        agree = sum(len(r) == n for r in data) >= 0.9 * len(data)
        found = sum(h.strip().casefold() in wanted for h in header)
        score = (found, n > 1, agree, n, -rank)
        if best is None or score > best[0]:
            best = (score, separator)
    return candidates[0] if best is None else best[1]


def _parquet(path: Path, head: bytes) -> Table:
    if not head.startswith(b"PAR1"):
        raise InputUnusable(f"{path.name} is not a Parquet file")
    sha256, _ = _digest(path, check_utf8=False)
    frame = pl.scan_parquet(path)
    names = _schema(frame, path.name, "Parquet")
    return Table(path.name, sha256, frame, names, "Parquet", first_row=2)


def _xlsx(path: Path, head: bytes, header: HeaderRule | None) -> Table:
    if not head.startswith(b"PK\x03\x04"):
        for magic, what in _MAGIC.items():
            if head.startswith(magic):
                raise InputUnusable(f"{path.name} is {what}, not an XLSX workbook")
        raise InputUnusable(f"{path.name} is not an XLSX workbook")
    sha256, _ = _digest(path, check_utf8=False)
    extent = workbook.check(path, path.name)  # before the reader allocates anything
    frame = _sheet(path)
    if not frame.columns:
        raise InputUnusable(f"{path.name}: the first sheet is empty")
    top = extent.first_row  # the first row with a value: the header, unless a title is above it
    if header is not None and (header.pinned is not None or not header.named_by(frame.columns)):
        found = header.pinned or _xlsx_header(path, header, top)
        if found is not None and found != top:
            frame, top = _sheet(path, {"header_row": found - 1}), found
    return Table(
        path.name, sha256, frame.lazy(), frame.columns, "XLSX", first_row=top + 1, header_row=top
    )


def _sheet(path: Path, options: dict[str, Any] | None = None, **more: Any) -> pl.DataFrame:
    """The first sheet, every cell kept (``options``: fastexcel's, such as ``header_row``)."""
    try:
        frame: pl.DataFrame = pl.read_excel(
            path,
            engine="calamine",
            sheet_id=1,
            infer_schema_length=None,
            drop_empty_rows=False,
            drop_empty_cols=False,
            raise_if_empty=False,
            read_options=options,
            **more,
        )
    except Exception:  # fastexcel's errors are not polars'
        raise InputUnusable(f"{path.name} cannot be read as an XLSX workbook") from None
    return frame


def _xlsx_header(path: Path, header: HeaderRule, top: int) -> int | None:
    """The sheet row of the first of the first rows (from ``top``) naming the header's columns."""
    rows = _sheet(path, {"n_rows": SEARCH_ROWS}, has_header=False)
    index = first_naming_row(rows.iter_rows(), header)
    return None if index is None else top + index


def _ndjson(path: Path) -> Table:
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputUnusable(f"{path.name} is not UTF-8 text (JSON must be UTF-8)") from None
    if not data.strip():
        raise InputUnusable(f"{path.name} holds no JSON lines")
    beyond = jsonbounds.problem(data)  # before a parser recurses or overflows on it
    if beyond is not None:
        raise InputUnusable(f"{path.name} cannot be used: it holds {beyond} (see README, Limits)")
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except pl.exceptions.PolarsError:
        _ndjson_problem(path.name, data)
    lines: list[int] | None = None
    body = data.rstrip(b" \t\r\n")
    if re.search(rb"(?:^|\n)[ \t\r]*\n", body):
        lines = [i for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    return Table(path.name, sha256, frame.lazy(), frame.columns, "NDJSON", 1, lines)


def _ndjson_problem(file: str, data: bytes) -> NoReturn:
    """Raise :class:`InputUnusable` naming the first line that is not a JSON object.

    Called when polars cannot read the file; when every line is an object,
    the problem is a field whose kind differs between lines.
    """
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise InputUnusable(f"{file}: line {number} is not valid JSON") from None
        if not isinstance(value, dict):
            raise InputUnusable(f"{file}: line {number} is not a JSON object")
    raise InputUnusable(
        f"{file} cannot be read: a field holds values of different kinds on different lines"
        " (for example numbers on some and true/false on others)"
    )
