"""Bounds on JSON from outside: how deep it nests, how long a number is.

A JSON parser given ``[[[[...]]]]`` a hundred thousand deep recurses until
it fails (Python's ``json``: ``RecursionError``; polars: ``DepthLimitExceeded``),
and one given a 5,000-digit integer refuses it with an error of its own
(Python's ``int`` stops at 4,300 digits). Neither is a bug of the file's
reader: both are files the tool cannot use. :func:`problem` finds them
first, in one pass over the bytes, so that the reader (NDJSON input,
receipts) refuses such a file with one line and its usual exit code (65).

Strings are skipped (a bracket or a digit inside quotes is text), then the
brackets alone are walked; flat records (the common case) cost one regular
expression and a ``bytes.translate``.
"""

from __future__ import annotations

import re

MAX_DEPTH = 32  # arrays and objects inside each other; a request record needs 2, a receipt 4
MAX_NUMBER_CHARS = 64  # characters of one number (digits, sign, point, exponent)

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(rb"-?[0-9][0-9.eE+-]{%d,}" % MAX_NUMBER_CHARS)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def problem(data: bytes | str) -> str | None:
    """Why ``data`` (JSON, or JSON lines) is beyond the bounds, or None when it is not.

    The words say what was found ("nested deeper than 32 levels", "a number
    longer than 64 characters"), never any of the data.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    bare = _STRING.sub(b'""', raw)
    if _NUMBER.search(bare):
        return f"a number longer than {MAX_NUMBER_CHARS} characters"
    brackets = bare.translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2 * MAX_DEPTH:
        return None if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH else _deep(brackets)
    return _deep(brackets)


def _deep(brackets: bytes) -> str | None:
    depth = 0
    for b in brackets:
        if b in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
        else:
            depth = max(0, depth - 1)
    return None
