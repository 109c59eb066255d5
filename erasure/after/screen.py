"""``erasure screen``: an import file less every row naming an erased person.

Before any import into Altcraft: each identifier cell of the file is
normalised and keyed as the intake keys it, under every (db_id,
resource_id, field) combination that finished requests used; a row any of
whose keys belongs to a finished pair (last outcome ``erased`` or
``not_found``) is screened out. A cell that cannot be normalised cannot be
checked: its row is kept and counted as ``unchecked`` (exit 1), and its row
number listed. Columns are mapped as the intake maps them: ``--column
email=E-mail`` (each kind given), else ``[screen] columns``, else the
default names ``email``, ``phone``, ``profile_id`` in any case, the header
being the first of the first 20 rows naming one of them. A file where no
row names them, or that lacks a column the job or command names, is 65
naming the columns looked for: a file whose columns match nothing is never
copied as clean. Cells are read with the intake's repairs
(:mod:`erasure.intake.repair`): ``mailto:`` and display names are checked as
the address they hold, and a cell of several addresses is screened out when
any of them was erased. Kept rows
are copied in the input's own format; CSV, TSV and NDJSON records are
copied byte for byte (the original lines), so that row order and every
untouched cell stay exactly as they were. Nothing screened is written
anywhere, nor any value in a message.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl

from erasure import ledger as ledger_mod
from erasure.errors import InputUnusable, OutputError, UsageError
from erasure.files import Perms, atomic_write, open_new, open_regular
from erasure.intake import as_text, normalize, read_table, repair
from erasure.intake.header import SEARCH_ROWS, HeaderRule, fold
from erasure.intake.layout import DEFAULT_NAMES
from erasure.intake.readers import Table
from erasure.job import Columns, Job
from erasure.keys import Keyer, Role
from erasure.ledger import finality

from .cells import Spec, finished_identities, identities, matches, specs_of

__all__ = ["ScreenResult", "csv_records", "screen"]


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What ``screen`` did: rows of the input, kept, screened out, and kept unchecked."""

    input: Path
    out: Path
    rows: int
    kept: int
    screened: int
    unchecked: int  # kept rows with a cell that could not be normalised, so not checked
    unchecked_rows: tuple[int, ...] = ()  # their row numbers, as a spreadsheet numbers them


def screen(
    job: Job, source: Path, out: Path, columns: Mapping[str, str] | None = None
) -> ScreenResult:
    """Copy ``source`` to ``out`` less the rows naming a finished erasure.

    ``columns`` maps a kind (``email``, ``phone``, ``profile_id``) to the
    file's header, as ``--column`` gives it; it wins over ``[screen] columns``.
    """
    mapped = screen_columns(job, columns)
    if out.suffix.lower() != source.suffix.lower():
        raise UsageError(f"--out {out.name} must have the input's suffix ({source.suffix})")
    if out.absolute() == source.absolute():
        raise UsageError("--out must not be the input file")
    keyer = job.keyer(Role.IDENTIFIER, command="erasure screen")
    with closing(ledger_mod.open_readonly(job.ledger.path)) as db:
        ledger_mod.check_meta(ledger_mod.read_meta(db), keyer, job.ledger.path)
        finished = finished_identities(db)
        # Read once: the keys and the copied bytes come from one snapshot of the
        # file, so that a file replaced meanwhile can never pair one version's
        # keys with another's rows (an erased person kept, an innocent dropped).
        with _snapshot(source, out) as copy:
            check = partial(finality.check_keys, db, keyer=keyer)
            return _screen(job, keyer, finished, source, copy, out, check, mapped)


@contextmanager
def _snapshot(source: Path, out: Path) -> Iterator[Path]:
    """A private copy of ``source`` (same name, owner-only folder beside ``out``), removed after.

    Read in one pass from one open descriptor of a regular file; raw
    values, so owner-only, and beside the output rather than in a shared
    temporary folder.
    """
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".screen", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot write beside the screened file {out}: {exc.strerror}") from None
    try:
        copy = folder / source.name
        with open_regular(source, "input file") as src, open_new(copy) as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_COPY_CHUNK = 1 << 20  # bytes


def screen_columns(job: Job, given: Mapping[str, str] | None) -> Columns:
    """The columns ``screen`` reads: ``--column``, else ``[screen] columns``, else the defaults."""
    if given:
        unknown = sorted(set(given) - {"email", "phone", "profile_id"})
        if unknown:
            raise UsageError(
                f"--column {unknown[0]}=...: the kind must be email, phone or profile_id"
            )
        return Columns(
            email=given.get("email"),
            phone=given.get("phone"),
            profile_id=given.get("profile_id"),
            explicit=True,
        )
    return job.screen.columns


def open_file(path: Path, columns: Columns) -> tuple[Table, list[Spec]]:
    """The import file and its identifier columns; 65 naming what was looked for when absent."""
    names = [n for n in (columns.email, columns.phone, columns.profile_id) if n]
    names += [c.column for c in columns.custom]
    if columns.explicit:
        rule = HeaderRule(frozenset(fold(n) for n in names))
        looked = " and ".join(repr(n) for n in names)
    else:
        rule = HeaderRule(frozenset(), frozenset(DEFAULT_NAMES))
        looked = "email, phone or profile_id (any case)"
    table = read_table(path, rule.wanted, rule)
    if not rule.named_by(table.names):
        raise InputUnusable(
            f"{table.file}: no row among its first {SEARCH_ROWS} names {looked}, the columns "
            "screen looked for; name yours with --column email=HEADER (or phone=, "
            "profile_id=) or [screen] columns"
        )
    return table, specs_of(columns, table.names, table.file)


def _screen(
    job: Job,
    keyer: Keyer,
    finished: pl.DataFrame,
    source: Path,
    copy: Path,
    out: Path,
    check: Callable[[set[str]], object],
    columns: Columns,
) -> ScreenResult:
    table, specs = open_file(copy, columns)
    frame = table.collect(list(dict.fromkeys(s.column for s in specs)))
    combos = identities(finished)
    wanted = set(finished.get_column("key").to_list())
    screened = pl.repeat(False, frame.height, eager=True)
    unusable = pl.repeat(False, frame.height, eager=True)
    used: set[str] = set()  # keys whose finished erasure screens a row
    for spec in specs:
        cells = _cells(frame.get_column(spec.column), spec, table.file, job.input.phone_region)
        # each address of a cell that holds several: the row goes when any was erased
        named = pl.concat(
            [cells.select("i", value="value"), cells.select("i", value="extra").explode("value")]
        ).drop_nulls("value")
        hits = matches(named.get_column("value"), spec, combos, keyer, wanted)
        used.update(hits.get_column("key").to_list())
        rows = named.filter(pl.col("value").is_in(hits.get_column("value").implode()))
        hit = pl.Series(range(frame.height)).is_in(rows.get_column("i").implode())
        screened = screened | hit
        unusable = unusable | cells.get_column("reason").is_not_null()
    check(used)  # those erasures, borne out by the events (erasure.ledger.finality: 78)
    keep = ~screened
    kept = int(keep.sum())
    left = keep & unusable
    numbers = table.row_numbers(frame.height).filter(left).to_list()
    _write(copy, out, keep, job.perms, table)
    return ScreenResult(
        source, out, frame.height, kept, frame.height - kept, len(numbers), tuple(numbers)
    )


def _cells(raw: pl.Series, spec: Spec, file: str, phone_region: str) -> pl.DataFrame:
    """``i`` (the row), ``value``, ``reason`` and ``extra``, read as the intake reads them."""
    text, _ = as_text(raw, file)
    if spec.matching == "email":
        found = repair.emails(text, split=True)
    elif spec.matching == "phone":
        found = repair.phones(text, phone_region)
    else:
        found = normalize.texts(text).with_columns(extra=pl.lit(None, pl.List(pl.String)))
    return found.select("value", "reason", "extra").with_row_index("i")


def _write(source: Path, out: Path, keep: pl.Series, perms: Perms, table: Table) -> None:
    suffix = source.suffix.lower()
    try:
        with atomic_write(out, perms) as tmp:
            if suffix in (".csv", ".tsv"):
                utf16 = table.encoding == "UTF-16"
                header = table.header_row or 1
                tmp.write_bytes(_copy_records(source, keep, utf16=utf16, header=header))
            elif suffix in (".ndjson", ".jsonl"):
                tmp.write_bytes(_copy_lines(source, keep))
            elif suffix == ".parquet":
                table.frame.collect().filter(keep).write_parquet(tmp)
            else:  # .xlsx: the first sheet's values, exactly the rows the keys came from
                table.frame.collect().filter(keep).write_excel(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write the screened file {out}: {exc.strerror or exc}") from None


def csv_records(data: bytes, quote: bytes = b'"') -> list[bytes]:
    """A CSV file's records as their original bytes, line ends included, header first.

    A record ends at a line end outside quotes (RFC 4180: a quoted cell may
    hold line ends; a doubled quote is two quotes, so parity tells).
    """
    lines = data.splitlines(keepends=True) if b"\r" in data else _lines(data)
    if quote not in data:  # the common case: one line, one record
        return lines
    records: list[bytes] = []
    pending: list[bytes] = []
    odd = False
    for line in lines:
        pending.append(line)
        odd ^= line.count(quote) % 2 == 1
        if not odd:
            records.append(b"".join(pending))
            pending = []
    if pending:
        records.append(b"".join(pending))
    return records


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    last = lines.pop()
    out = [line + b"\n" for line in lines]
    if last:
        out.append(last)
    return out


def _copy_records(source: Path, keep: pl.Series, *, utf16: bool, header: int = 1) -> bytes:
    data = source.read_bytes()
    if utf16:  # records are found in the text, then written back in the file's own encoding
        encoding = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-16-be"
        text = data[2:].decode(encoding)
        records = [r.encode(encoding) for r in _text_records(text)]
        head = data[:2]
    else:
        records = csv_records(data)
        head = b""
    skip = header - 1  # title rows above the header: copied as they are
    body = records[skip + 1 :]
    if len(body) != keep.len():
        raise InputUnusable(
            f"{source.name}: its records could not be told apart line by line "
            f"({len(body)} found, {keep.len()} read); nothing was written"
        )
    flags = keep.to_list()
    top = b"".join(records[: skip + 1])
    return head + top + b"".join(r for r, k in zip(body, flags, strict=True) if k)


def _text_records(text: str) -> list[str]:
    return [r.decode("utf-8") for r in csv_records(text.encode("utf-8"))]


def _copy_lines(source: Path, keep: pl.Series) -> bytes:
    data = source.read_bytes()
    bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
    records = [line for line in _lines(data[len(bom) :]) if line.strip()]
    if len(records) != keep.len():
        raise InputUnusable(f"{source.name}: its lines could not be matched to its records")
    flags = keep.to_list()
    return bom + b"".join(r for r, k in zip(records, flags, strict=True) if k)
