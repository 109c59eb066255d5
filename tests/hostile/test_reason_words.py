"""A reason's words never quote the cell (finding: the words kept one character of it, such
as `«ö» is not allowed before the @`: a piece of the person's name in the ledger).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.intake.normalize import Invalid, email, phone

# characters the fixed wording holds itself ("such as Cyrillic а for Latin a?")
_OWN_WORDS = {"\u0430"}
_CELLS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _words(check: object, raw: str) -> str | None:
    try:
        check(raw)  # type: ignore[operator]
    except Invalid as exc:
        return str(exc)
    return None


@settings(max_examples=300)
@given(local=_CELLS, domain=_CELLS)
def test_email_words_never_hold_a_character_of_the_cell(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    words = _words(email, raw)
    if words is None:
        return
    assert "«" not in words and "»" not in words
    for c in set(raw) - _OWN_WORDS:
        if not c.isascii():
            assert c not in words, (raw, words)


@settings(max_examples=300)
@given(raw=st.one_of(_CELLS, _CELLS.map(lambda t: "+7 916 123-45-67" + t)))
def test_phone_words_never_hold_a_character_of_the_cell(raw: str) -> None:
    words = _words(lambda v: phone(v, "RU"), raw)
    if words is None:
        return
    assert "«" not in words and "»" not in words
    for c in set(raw) - _OWN_WORDS:
        if not c.isascii():
            assert c not in words, (raw, words)


def test_the_kind_of_character_is_said_instead() -> None:
    assert "a symbol outside ASCII" in (_words(email, "\u00a7@mail.ru") or "")
    assert "the comma character" in (_words(email, "ivan,petr@mail.ru") or "")
