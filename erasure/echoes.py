"""What a service that echoes a request must never put into the ledger.

Some services answer a bad request with the request itself in
``error_text``: the token, and the identifier in whatever form it travelled
(JSON-escaped, URL-encoded, XML-escaped) or in a form the service derived
from it (lower-cased, an email's local part, a phone in national format).
:class:`Echoes` removes all of them before an error text becomes an event:

* the token in every form it may come back in becomes ``<token>``;
* the identifier in every such form becomes its key;
* any other substring shaped like an email address or a phone number
  becomes ``<email>`` or ``<phone>`` (another person's data, or a form of
  this one that no list foresaw);
* the result is cut to :data:`MAX_ERROR_TEXT` characters.

All replacements are found in one pass over the original text and applied
together, so a key put in never gets rescanned (its hex digits are not a
phone number). Over-matching is accepted (a date may read as ``<phone>``,
a short value may replace part of a word); leaking is not. Phone numbers in
running text are found by libphonenumber's matcher, with a bare run of
seven or more digits as the backstop.

Pure: no I/O.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from urllib.parse import quote, quote_plus

import phonenumbers

MAX_ERROR_TEXT = 200  # characters kept of a service's error text, after scrubbing
SHORT = 4  # forms shorter than this (characters) are replaced only as whole words
MIN_PHONE_DIGITS = 7  # a run of this many digits is taken for a phone number
_MARK = 0xF0000  # supplementary private use area: where replacements wait for the second pass

TOKEN = "<token>"
EMAIL = "<email>"
PHONE = "<phone>"

# An email address, also with its @ URL-encoded (%40) or JSON-escaped (\u0040),
# and with JSON escapes (\u0438) inside its parts: a leak-side over-match.
_ATOM = r"[^\s@<>\"'(),;:\[\]{}|=&]+"
_EMAIL_SHAPE = re.compile(rf"{_ATOM}(?:@|%40|\\u0040){_ATOM}", re.IGNORECASE)
_DIGITS = re.compile(rf"\+?\d{{{MIN_PHONE_DIGITS},}}")


def forms_of(value: str) -> set[str]:
    """``value`` as sent and as every encoding a request or an echo may carry it."""
    if not value:
        return set()
    found = {
        value,
        encode_basestring_ascii(value)[1:-1],  # how erasure's JSON body carries it
        json.dumps(value, ensure_ascii=False)[1:-1],  # how another JSON encoder would
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value, quote=False),  # the XML body
        html.escape(value),
    }
    return {f for f in found if f}


def identifier_forms(value: str, matching: str, region: str = "RU") -> set[str]:
    """Every form of one identifier a service may echo (see the module docstring)."""
    forms = forms_of(value)
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    if len(digits) >= 5 and digits != value:  # "+12345" echoed as "12345"
        forms.add(digits)
    if matching == "email" and "@" in value:
        local = value.rsplit("@", 1)[0]
        forms |= forms_of(local)
    if matching == "phone":
        forms |= _phone_forms(value, region)
    return forms


def _phone_forms(value: str, region: str) -> set[str]:
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    forms = {digits} if len(digits) >= MIN_PHONE_DIGITS else set()
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return forms
    national = phonenumbers.national_significant_number(number)
    forms.add(national)
    pf = phonenumbers.PhoneNumberFormat
    for style in (pf.E164, pf.INTERNATIONAL, pf.NATIONAL, pf.RFC3966):
        formatted = phonenumbers.format_number(number, style)
        forms.add(formatted)
        forms.add("".join(c for c in formatted if c.isdigit()))  # e.g. 89161234567
    for form in list(forms):
        forms |= forms_of(form)
    return {f for f in forms if f}


@dataclass(frozen=True, slots=True)
class Echoes:
    """The scrubber of one run: the token's forms are worked out once.

    ``region`` is the job's ``phone_region``, for reading phone numbers
    written without a country code.
    """

    token_forms: frozenset[str] = frozenset()
    region: str = "RU"

    @classmethod
    def for_run(cls, token: str | None, region: str = "RU") -> Echoes:
        return cls(frozenset(forms_of(token or "")), region)

    def scrub(
        self, text: str | None, value: str = "", key: str = "", matching: str = "email"
    ) -> str | None:
        """``text`` without the token or the identifier (``value``, sent with ``matching``)."""
        if not text:
            return text
        folded = text.casefold()
        # every form of a phone number holds digits: a text without one names none of
        # them, and working the forms out (libphonenumber) is most of the cost
        maybe = matching != "phone" or any(c.isdigit() for c in text)
        named = {f: key for f in identifier_forms(value, matching, self.region)} if maybe else {}
        named.update({f: TOKEN for f in self.token_forms})
        present = {f: r for f, r in named.items() if f.casefold() in folded}
        if not present and not _may_hold_contact(text):
            return text[:MAX_ERROR_TEXT]
        # First the forms named here, each marked by one private-use character
        # (no digit, no @), then the generic shapes over what is left.
        named_spans = list(_form_spans(text, present))
        marks = {chr(_MARK + i): r for i, r in enumerate(sorted(set(present.values())))}
        mark_of = {r: m for m, r in marks.items()}
        marked = _apply(text, [(a, b, mark_of[r]) for a, b, r in named_spans])
        spans = [(m.start(), m.end(), EMAIL) for m in _EMAIL_SHAPE.finditer(marked)]
        spans += [(m.start(), m.end(), PHONE) for m in _DIGITS.finditer(marked)]
        spans += _phone_spans(marked, self.region)
        scrubbed = _apply(marked, spans).translate({ord(m): r for m, r in marks.items()})
        return scrubbed[:MAX_ERROR_TEXT]


def _may_hold_contact(text: str) -> bool:
    if "@" in text or "%40" in text or "\\u0040" in text:
        return True
    return sum(c.isdigit() for c in text) >= MIN_PHONE_DIGITS


def _form_spans(text: str, forms: dict[str, str]) -> Iterable[tuple[int, int, str]]:
    for form, replacement in forms.items():
        escaped = re.escape(form)
        pattern = escaped if len(form) >= SHORT else rf"(?<!\w){escaped}(?!\w)"
        for m in re.finditer(pattern, text, re.IGNORECASE):
            yield m.start(), m.end(), replacement


def _phone_spans(text: str, region: str) -> list[tuple[int, int, str]]:
    if sum(c.isdigit() for c in text) < MIN_PHONE_DIGITS:
        return []
    leniency = phonenumbers.Leniency.POSSIBLE
    return [
        (m.start, m.end, PHONE)
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency)
    ]


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with the spans replaced; overlapping spans merge into the first's."""
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[str] = []
    pos = 0
    for start, end, repl in spans:
        if start < pos:  # overlaps one already replaced: widen it
            pos = max(pos, end)
            continue
        out += [text[pos:start], repl]
        pos = end
    out.append(text[pos:])
    return "".join(out)
