"""``erasure screen``: an import file less every row naming an erased person.

Before any import into Altcraft: each identifier cell of the file is
normalised and keyed as the intake keys it, under every (db_id,
resource_id, field) combination that finished requests used; a row any of
whose keys belongs to a finished pair (last outcome ``erased`` or
``not_found``) is screened out. A cell that cannot be normalised cannot be
checked: its row is kept and counted as ``unchecked`` (exit 1). The job's
``[input.columns]`` mapping is used; mapped columns the file lacks are left
out, so that an import file need carry only the ones it has. Kept rows
are copied in the input's own format; CSV, TSV and NDJSON records are
copied byte for byte (the original lines), so that row order and every
untouched cell stay exactly as they were. Nothing screened is written
anywhere, nor any value in a message.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl

from erasure import ledger as ledger_mod
from erasure.errors import InputUnusable, OutputError, UsageError
from erasure.files import Perms, atomic_write, open_new, open_regular
from erasure.intake.readers import Table
from erasure.job import Job
from erasure.keys import Keyer, Role
from erasure.ledger import finality

from .cells import finished_identities, identities, matches, normalised, open_file

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


def screen(job: Job, source: Path, out: Path) -> ScreenResult:
    """Copy ``source`` to ``out`` less the rows naming a finished erasure."""
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
            return _screen(job, keyer, finished, source, copy, out, check)


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


def _screen(
    job: Job,
    keyer: Keyer,
    finished: pl.DataFrame,
    source: Path,
    copy: Path,
    out: Path,
    check: Callable[[set[str]], object],
) -> ScreenResult:
    table, specs = open_file(copy, job.input.columns, partial=True)
    frame = table.collect(list(dict.fromkeys(s.column for s in specs)))
    combos = identities(finished)
    wanted = set(finished.get_column("key").to_list())
    screened = pl.repeat(False, frame.height, eager=True)
    unusable = pl.repeat(False, frame.height, eager=True)
    used: set[str] = set()  # keys whose finished erasure screens a row
    for spec in specs:
        cells = normalised(frame.get_column(spec.column), spec, table.file, job.input.phone_region)
        hits = matches(cells.get_column("value"), spec, combos, keyer, wanted)
        used.update(hits.get_column("key").to_list())
        hit = cells.get_column("value").is_in(hits.get_column("value").implode())
        screened = screened | hit.fill_null(False)  # an empty cell names no one
        unusable = unusable | cells.get_column("reason").is_not_null()
    check(used)  # those erasures, borne out by the events (erasure.ledger.finality: 78)
    keep = ~screened
    kept = int(keep.sum())
    unchecked = int((keep & unusable).sum())
    _write(copy, out, keep, job.perms, table)
    return ScreenResult(source, out, frame.height, kept, frame.height - kept, unchecked)


def _write(source: Path, out: Path, keep: pl.Series, perms: Perms, table: Table) -> None:
    suffix = source.suffix.lower()
    try:
        with atomic_write(out, perms) as tmp:
            if suffix in (".csv", ".tsv"):
                tmp.write_bytes(_copy_records(source, keep, utf16=table.encoding == "UTF-16"))
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


def _copy_records(source: Path, keep: pl.Series, *, utf16: bool) -> bytes:
    data = source.read_bytes()
    if utf16:  # records are found in the text, then written back in the file's own encoding
        encoding = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-16-be"
        text = data[2:].decode(encoding)
        records = [r.encode(encoding) for r in _text_records(text)]
        head = data[:2]
    else:
        records = csv_records(data)
        head = b""
    body = records[1:]
    if len(body) != keep.len():
        raise InputUnusable(
            f"{source.name}: its records could not be told apart line by line "
            f"({len(body)} found, {keep.len()} read); nothing was written"
        )
    flags = keep.to_list()
    return head + records[0] + b"".join(r for r, k in zip(body, flags, strict=True) if k)


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
