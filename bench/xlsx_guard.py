"""What bounding an XLSX costs: the guard's pass beside the reader's (``make bench``).

    .venv/bin/python bench/xlsx_guard.py [--rows 500000]

Writes a workbook of ROWS rows × 3 columns (ticket, email, phone: shared
strings, as Excel and xlsxwriter write them), then times
:func:`erasure.intake.workbook.check` (the streamed pass over the sheet and
shared strings that runs before the reader) and ``polars.read_excel`` with
calamine (the read itself), each the best of three. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl
import xlsxwriter

from erasure.intake import workbook


def best_of(n: int, fn: object) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["ticket", "email", "phone"])
        for i in range(1, args.rows + 1):
            sheet.write_row(i, 0, [f"T{i}", f"user{i}@example.com", f"+7900{i:07d}"])
        book.close()
        extent = workbook.check(path, path.name)
        guard = best_of(3, lambda: workbook.check(path, path.name))
        read = best_of(3, lambda: pl.read_excel(path, engine="calamine"))
    cells = extent.cells
    print(f"## The XLSX guard ({args.rows:,} rows, {cells:,} cells)\n")
    print(f"`.venv/bin/python bench/xlsx_guard.py --rows {args.rows}`\n")
    print("| pass | seconds | µs a cell |")
    print("|---|---|---|")
    print(f"| guard (`workbook.check`) | {guard:.2f} | {guard / cells * 1e6:.1f} |")
    print(f"| read (`pl.read_excel`, calamine) | {read:.2f} | {read / cells * 1e6:.1f} |")
    print(f"\nUnpacked: {extent.unpacked / 1024**2:.0f} MiB.")


if __name__ == "__main__":
    main()
