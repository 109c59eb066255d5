"""An SQL script, one statement at a time, inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

__all__ = ["statements"]


def statements(script: str) -> Iterator[str]:
    """A script's statements, one at a time (``executescript`` would commit first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
