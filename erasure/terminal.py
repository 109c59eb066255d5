"""Text bound for a terminal, with its control characters made visible.

A request id, a column name or a reason comes from a file someone else
wrote. Printed raw, an escape sequence in it can retitle the window, clear
the screen or move the cursor, and a line feed can forge a line of output
("ledger intact"). :func:`visible` writes every control character (C0 but
the tab, DEL, C1) and the bidirectional overrides that reorder what is
shown as an escape (``\\x1b``, ``\\n``, ``\\u202e``), so what reaches the
terminal is exactly one line of plain text. JSON output needs none of
this: ``json.dumps`` escapes control characters itself.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def visible(text: str) -> str:
    """``text`` with its control characters escaped (one line; the tab kept)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
