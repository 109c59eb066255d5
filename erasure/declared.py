"""Declared dataclasses: every field of a frozen dataclass says how it is read.

Three strict readers read by one declaration each, so that what they accept,
write and document cannot drift apart: the job file (:mod:`erasure.job.schema`,
TOML, ConfigError 78), the receipt document (:mod:`erasure.receipts.parse`,
JSON, NotAReceipt 65) and the sandbox's switches (:mod:`erasure.sandbox.settings`,
command-line text or JSON, SettingError: 64 or HTTP 400). Each wraps
:func:`declare` (``key``, ``member``, ``switch``) and words its own errors;
here is what they share: the fields with their resolved types (one added
without a declaration is :class:`Undeclared` at the first read) and optional
types.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, field
from typing import Any, get_args, get_origin

DECLARED = "declared"  # the metadata key every declared field carries

Check = Callable[[Any], str | None]
"""A value's check: None when fine, else why not (``"must be greater than 0"``)."""


class Undeclared(TypeError):
    """A dataclass field without a declaration: a bug in the code, never in the input."""


def declare(
    default: Any = MISSING, *, factory: Callable[[], Any] | None = None, **meta: Any
) -> Any:
    """A declared field: its default (or ``factory``; neither: required) and its metadata."""
    marked = {DECLARED: True, **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=marked)
    return field(default=default, metadata=marked)


@functools.cache
def fields_of(cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """``cls``'s fields with their resolved types; :class:`Undeclared` if one is not declared."""
    hints = typing.get_type_hints(cls)
    found = tuple((f, hints[f.name]) for f in dataclasses.fields(cls))
    for f, _ in found:
        if not f.metadata.get(DECLARED):
            raise Undeclared(f"{cls.__name__}.{f.name} has no declaration: say how it is read")
    return found


def is_union(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType)


def unoptional(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in get_args(tp) if a is not type(None)]
    if is_union(tp) and len(args) == 1:
        return args[0]
    return tp
