"""The phone rule for one value (:func:`phone`, through ``phonenumbers``), and over many.

:func:`phone` is the reference: what it answers is what a phone number
normalises to. :func:`phone_chunk` applies it to a list, and
:func:`phones_in_parallel` shares a long list out to worker processes.
The vectorised reading that answers most cells without it is
:mod:`erasure.intake.phone_column`, which checks itself against this one.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable

import phonenumbers
from phonenumbers import NumberParseException

from erasure.intake.cleaning import Invalid, Normalised, clean, describe_char, each_value

PHONE_INPUT_MAX = 250  # characters; libphonenumber refuses longer input
PARALLEL_MIN = 20_000  # distinct phone values left to phonenumbers before workers pay off
MAX_WORKERS = 8  # processes at most: past that, reading and joining the column dominates

_PHONE_ALLOWED = frozenset("+＋-‐‑‒–—―−()[].")
_PHONE_SEPARATORS = frozenset(",;/|\\")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "phone number has an unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "phone number is too short",
    NumberParseException.TOO_SHORT_NSN: "phone number is too short",
    NumberParseException.TOO_LONG: "phone number is too long",
}


def phone(raw: str, region: str) -> str:
    """A phone number in E.164; without a country code it is read in ``region``."""
    if len(raw) > 4 * PHONE_INPUT_MAX:
        raise Invalid("phone number is too long")
    value = clean(raw)
    if not value:
        raise Invalid("empty")
    if len(value) > PHONE_INPUT_MAX:
        raise Invalid("phone number is too long")
    for c in value:
        if c.isalpha():
            raise Invalid("phone number contains letters")
        if c in _PHONE_SEPARATORS:
            raise Invalid(f"phone cell holds {describe_char(c)}: one number per cell")
        if not (c.isdigit() or c.isspace() or c in _PHONE_ALLOWED):
            raise Invalid(f"phone number contains {describe_char(c)}")
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException as exc:
        raise Invalid(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_valid_number(number):
        if number.country_code == phonenumbers.country_code_for_region(region):
            raise Invalid(f"phone number is not valid for region {region}")
        raise Invalid(f"phone number is not valid for country code +{number.country_code}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def usable_cpus() -> int:
    """CPUs this process may run on: ``os.process_cpu_count`` (3.13+), else ``os.cpu_count``."""
    counter: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)
    return counter() or 1


def phone_chunk(values: list[str], region: str) -> list[Normalised]:
    """:func:`phone` over ``values`` in this process: each one's number or reason, in order."""
    return each_value(lambda v: phone(v, region))(values)


def phones_in_parallel(values: list[str], region: str, workers: int) -> list[Normalised]:
    """:func:`phone` over ``values``: one share here, the others in worker processes.

    The pool spawns fresh interpreters (the same start method on every OS)
    rather than forking: a fork copies polars' busy thread pool, whose locks
    the child may inherit held. Spawned workers import the main module
    under another name, so an ``if __name__ == "__main__"`` guard (as in
    ``python -m erasure``) keeps them from running the command again. When
    processes cannot be started or one dies, its share is done here: the
    answer is the same, only slower.
    """
    size = -(-len(values) // workers)
    shares = [values[i : i + size] for i in range(0, len(values), size)]
    if len(shares) < 2:
        return phone_chunk(values, region)
    # here, not at the top: most inputs never start a pool, and loading it
    # is 20 ms of every command's start
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(len(shares) - 1, mp_context=context) as pool:
            others = [pool.submit(phone_chunk, share, region) for share in shares[1:]]
            found = phone_chunk(shares[0], region)
            for future, share in zip(others, shares[1:], strict=True):
                try:
                    found.extend(future.result())
                except BrokenProcessPool:
                    found.extend(phone_chunk(share, region))
    except OSError:  # no processes here (a sandbox, a limit): one process does it all
        return phone_chunk(values, region)
    return found
