"""The job file's schema machinery: declared keys, and the one reader that checks them.

A section is a frozen dataclass; each of its fields declared with :func:`key`
(a TOML key: default, meaning, the commands that read it, an optional check)
or :func:`table` (a sub-table, itself such a dataclass), or :func:`internal`
(derived, never read from the file). :func:`read` walks a TOML table against
that declaration: an unknown key, a wrong type, a missing required key or a
failed check is a :class:`~erasure.errors.ConfigError` (78) naming the key and
why. A section may define ``finish(self, given: Given) -> Self`` for the rules
that tie several keys together; it returns the section, possibly replaced.

The same declaration prints the README's job-file reference
(:mod:`erasure.job.reference`), so the documentation cannot drift from what
the parser accepts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from erasure import declared
from erasure.declared import Check, declare
from erasure.declared import unoptional as unoptional  # the reference's, too
from erasure.errors import ConfigError


def key(
    default: Any = MISSING,
    doc: str = "",
    *,
    commands: Sequence[str] | None = None,
    check: Check | None = None,
    shown: str | None = None,
    required: str = "",
    toml: Any = None,
) -> Any:
    """A TOML key: its ``default`` (none: required), what it means, who reads it.

    ``commands`` defaults to the section's; ``shown`` is the default as the
    reference prints it (when the value itself reads badly); ``required`` adds
    why a required key is needed to its message. ``toml`` is the type the
    file holds when the field keeps something richer (``[input] deadline``
    is text in the file, a rule once ``finish`` has read it).
    """
    return declare(
        default,
        doc=doc,
        commands=tuple(commands) if commands is not None else None,
        check=check,
        shown=shown,
        required=required,
        toml=toml,
    )


def table(
    factory: Callable[[], Any] | None,
    doc: str = "",
    *,
    commands: Sequence[str] | None = None,
) -> Any:
    """A sub-table; ``factory`` makes its value when the file leaves it out.

    ``factory=None`` makes an optional section: ``None`` when absent.
    """
    said = tuple(commands) if commands is not None else None
    return declare(None, factory=factory, doc=doc, commands=said, table=True)


def internal(default: Any = MISSING, *, factory: Callable[[], Any] | None = None) -> Any:
    """A derived field: set by the section's ``finish``, never read from the file."""
    return declare(default, factory=factory, internal=True)


@dataclass(frozen=True, slots=True)
class Given:
    """What a section's ``finish`` knows: where it is, which keys the file gave, the base folder."""

    where: str  # "api", "input.columns"
    keys: frozenset[str]
    base: Path

    def at(self, name: str) -> str:
        """The dotted name of one of this section's keys."""
        return f"{self.where}.{name}" if self.where else name


def fail(why: str) -> ConfigError:
    """The job file's error, worded as every other one."""
    return ConfigError(f"job file: {why}")


# ---------------------------------------------------------------- checks


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or greater"


def finite_positive(value: Any) -> str | None:
    # TOML has inf and nan: neither is a number the tool can keep
    return None if math.isfinite(value) and value > 0 else "must be a finite number greater than 0"


def variable_name(value: Any) -> str | None:
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value)
    return None if ok else "is not a variable name"


def not_blank(value: Any) -> str | None:
    return None if value.strip() else "must name a column"


def no_success(value: Any) -> str | None:
    return "must not contain 0 (success)" if 0 in value else None


# ---------------------------------------------------------------- reading


def fields_of(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The section's declared fields with their resolved types."""
    return [(f, f.metadata.get("toml") or tp) for f, tp in declared.fields_of(cls)]


def is_table(f: dataclasses.Field[Any]) -> bool:
    return bool(f.metadata.get("table"))


def is_internal(f: dataclasses.Field[Any]) -> bool:
    return bool(f.metadata.get("internal"))


def read(cls: type, data: Any, where: str, base: Path, *, top: bool = False) -> Any:
    """Check ``data`` (one TOML table) against section ``cls``; the section's value."""
    if not isinstance(data, dict):
        raise fail(f"[{where}] must be a table")
    declared = fields_of(cls)
    names = {f.name for f, _ in declared if not is_internal(f)}
    unknown = sorted(set(data) - names)
    if unknown:
        what = "unknown section or key" if top else "unknown key"
        raise fail(f"{what} {where + '.' if where else ''}{unknown[0]}")
    values: dict[str, Any] = {}
    for f, tp in declared:
        if is_internal(f):
            continue
        at = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if is_table(f) and f.default is not None:
                # an absent table is read as empty, so its required keys are named
                values[f.name] = read(unoptional(tp), {}, at, base)
            elif f.default is MISSING and f.default_factory is MISSING:
                why = f.metadata.get("required") or ""
                raise fail(f"{at} is required{' ' + why if why else ''}")
            elif isinstance(f.default, Path):
                values[f.name] = _resolve(base, f.default)
            continue
        value = convert(tp, data[f.name], at, base)
        check: Check | None = f.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise fail(f"{at} {problem}")
        values[f.name] = value
    section = cls(**values)
    finish = getattr(section, "finish", None)
    if finish is not None:
        given = frozenset(k for k in data if k in names)
        section = finish(Given(where, given, base))
    return section


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def describe(tp: Any) -> str:
    """The type in words: ``a number or "auto"``."""
    tp = unoptional(tp)
    if declared.is_union(tp):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if get_origin(tp) is Literal:
        return " or ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(tp))
    if tp is Path:
        return "a path"
    if get_origin(tp) is frozenset:
        return "a list of integers"
    if get_origin(tp) is tuple:
        (inner, _) = get_args(tp)
        if dataclasses.is_dataclass(inner):
            return "a table or a list of tables"
        return f"a list of {describe(inner)[2:]}s"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


class _Wrong(Exception):
    """The value is not of the declared type (the caller words it)."""


def convert(tp: Any, value: Any, where: str, base: Path) -> Any:
    """``value`` as type ``tp``; a ConfigError naming ``where`` when it is not one."""
    try:
        return _convert(unoptional(tp), value, where, base)
    except _Wrong:
        raise fail(f"{where} must be {describe(tp)}") from None


def _convert(tp: Any, value: Any, where: str, base: Path) -> Any:
    if declared.is_union(tp):
        for option in get_args(tp):
            try:
                return _convert(option, value, where, base)
            except _Wrong:
                continue
        raise _Wrong
    if get_origin(tp) is Literal:
        if isinstance(value, bool) or value not in get_args(tp):
            raise _Wrong
        return value
    # bool is an int in Python; never accept it where a number is asked
    if tp is bool:
        if not isinstance(value, bool):
            raise _Wrong
        return value
    if isinstance(value, bool):
        raise _Wrong
    if tp is int:
        if not isinstance(value, int):
            raise _Wrong
        return value
    if tp is float:
        if not isinstance(value, (int, float)):
            raise _Wrong
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _Wrong
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise _Wrong
        return _resolve(base, Path(value))
    if get_origin(tp) is frozenset:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise _Wrong
        return frozenset(value)
    if get_origin(tp) is tuple:
        (inner, _) = get_args(tp)
        if dataclasses.is_dataclass(inner):
            items = [value] if isinstance(value, dict) else value
            if not isinstance(items, list):
                raise _Wrong
            many = len(items) > 1
            return tuple(
                read(inner, item, f"{where}[{i}]" if many else where, base)  # type: ignore[arg-type]
                for i, item in enumerate(items)
            )
        if not isinstance(value, list):
            raise _Wrong
        return tuple(_convert(inner, v, where, base) for v in value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Wrong
        return read(tp, value, where, base)  # type: ignore[arg-type]
    raise TypeError(f"the job schema has no reader for {tp!r}")  # a bug in the schema


def _resolve(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else (base / p)))
