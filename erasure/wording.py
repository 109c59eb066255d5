"""One word for each thing, with its number: ``count(1, "request")`` is "1 request".

A *request* is a ticket (a data subject's request, one request id); a
*delete* is one call to Altcraft's delete endpoint. Output that counts
either goes through :func:`count`, so that the noun agrees with its number.
"""

from __future__ import annotations

__all__ = ["count", "noun"]

_IRREGULAR = {"identifier key": "identifier keys", "person": "people"}


def noun(n: int, word: str) -> str:
    """``word`` in the number ``n`` asks for (English: singular only for 1)."""
    if n == 1:
        return word
    return _IRREGULAR.get(word, word + "s")


def count(n: int, word: str) -> str:
    """``"1 request"``, ``"2 requests"``, ``"0 deletes"``."""
    return f"{n} {noun(n, word)}"
