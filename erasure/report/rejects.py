"""A ``--rejects`` file: the raw rejected cells, for fixing the input, written only on request.

The only file the tool writes that holds raw values, so it is created
owner-only (or 0640 for ``[ledger] group``) before a byte is written, its
formula-looking cells are neutralised, and CSV gets a BOM so that Excel reads
its UTF-8; a ``.xlsx`` path gets a real workbook.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import xlsxwriter

from erasure.errors import OutputError, UsageError
from erasure.files import OWNER_ONLY, Perms, atomic_write
from erasure.intake import REJECTS_COLUMNS
from erasure.safecells import neutralise, neutralise_frame

SUFFIXES = (".csv", ".xlsx")


def write_rejects(invalid: pl.DataFrame, path: Path, perms: Perms = OWNER_ONLY) -> None:
    """Write the invalid records with their raw cells (:data:`REJECTS_COLUMNS`) to ``path``.

    Raises :class:`UsageError` (64) for a suffix other than ``.csv`` or
    ``.xlsx``, :class:`OutputError` (74) when the file cannot be written.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--rejects {path.name}: the suffix picks the format, .csv or .xlsx")
    frame = invalid.select(REJECTS_COLUMNS)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, perms) as tmp:
            if suffix == ".xlsx":
                _xlsx(tmp, frame)
            else:
                with tmp.open("wb") as out:
                    out.write("\ufeff".encode())  # Excel reads UTF-8 only with a BOM
                    neutralise_frame(frame).write_csv(out)
    except OSError as exc:
        raise OutputError(f"cannot write the rejects file {path}: {exc.strerror or exc}") from None


def _xlsx(path: Path, frame: pl.DataFrame) -> None:
    book = xlsxwriter.Workbook(
        str(path),
        {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    try:
        sheet = book.add_worksheet("Rejects")
        sheet.write_row(0, 0, frame.columns, book.add_format({"bold": True}))
        for r, row in enumerate(frame.iter_rows(), 1):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    sheet.write_string(r, c, neutralise(value))
                elif value is not None:
                    sheet.write_number(r, c, value)
    finally:
        book.close()
