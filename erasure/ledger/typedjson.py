"""Declared JSON: frozen dataclasses to and from plain JSON values, their types checked.

The machinery under :mod:`erasure.ledger.details` (kept apart so that the
declarations read on their own), and what ``status --json`` is written with
(:mod:`erasure.status_result`). A declared type is a frozen dataclass
whose fields are ``str``, ``int`` (never a bool), ``float``, ``bool``, a
``Literal``, ``X | None``, ``tuple[X, ...]`` (a JSON list), ``dict[str, X]``
or ``Mapping[str, X]`` (an object of plain values), ``Any``, or another
declared type. :func:`to_json` checks a value on its
way out; :func:`from_json` checks parsed JSON on its way in, strict about
undeclared keys only when asked (a writer's dict), never for a stored one.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal, TypeVar, get_args, get_origin

from erasure.declared import is_union
from erasure.errors import LedgerMismatch

__all__ = ["DetailError", "field_names", "from_json", "loads", "omitted", "to_json"]

T = TypeVar("T")


def omitted(default: Any = None) -> Any:
    """A field left out of the JSON while it holds ``default`` (absent reads as it)."""
    return field(default=default, metadata={"omit": True})


class DetailError(ValueError):
    """A detail that does not fit its kind: the words name the field and why."""


def field_names(tp: Any) -> dict[str, Any]:
    """A detail type's fields and their declared types (a test walks ``$.paths`` with it)."""
    return {f.name: t for f, t, _ in _fields(tp)}


_FIELDS: dict[type[Any], list[tuple[dataclasses.Field[Any], Any, bool]]] = {}
# per declared type, per field: (name, omitted, default, the exact plain types a value may
# have to be taken as it is, the declared type); what is not plain takes the long way
_PLANS: dict[type[Any], list[tuple[str, bool, Any, tuple[type, ...], Any]]] = {}
_PLAIN = {str: (str,), int: (int,), float: (float, int), bool: (bool,)}


def _fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Any, bool]]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = [(f, hints[f.name], bool(f.metadata.get("omit"))) for f in dataclasses.fields(cls)]
        _FIELDS[cls] = found
    return found


def _plan(cls: type[Any]) -> list[tuple[str, bool, Any, tuple[type, ...], Any]]:
    """The fields' plan: exact types (``type(v) in ...``: a bool is never an int) first."""
    found = _PLANS.get(cls)
    if found is None:
        found = []
        for f, tp, omit in _fields(cls):
            args = get_args(tp) if is_union(tp) else (tp,)
            plain: tuple[type, ...] = ()
            if all(a is type(None) or a in _PLAIN for a in args):
                plain = tuple(t for a in args for t in _PLAIN.get(a, (type(None),)))
            found.append((f.name, omit, f.default, plain, tp))
        _PLANS[cls] = found
    return found


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def to_json(tp: Any, value: Any, where: str = "") -> Any:
    """``value`` (of declared type ``tp``) as plain JSON values, its type checked."""
    plan = _PLANS.get(tp) if isinstance(tp, type) else None  # a declared type seen before
    if plan is None and _is_record(tp):
        plan = _plan(tp)
    if plan is not None:
        if not isinstance(value, tp):
            raise DetailError(f"{where or 'the detail'} must be a {tp.__name__}")
        out = {}
        for name, omit, default, plain, ftp in plan:
            v = getattr(value, name)
            if omit and v == default:
                continue
            out[name] = v if type(v) in plain else to_json(ftp, v, _at(where, name))
        return out
    _check(tp, value, where)
    origin = get_origin(tp)
    if value is not None and origin is tuple:
        (inner, _) = get_args(tp)
        return [to_json(inner, v, where) for v in value]
    if is_union(tp):
        inner = next(a for a in get_args(tp) if a is not type(None))
        return None if value is None else to_json(inner, value, where)
    if origin in _OBJECTS and not isinstance(value, dict):
        return dict(value)  # a read-only mapping, as the JSON object it stands for
    return value


def from_json(tp: Any, value: Any, where: str = "", *, strict: bool = False) -> Any:
    """``value`` (parsed JSON) as declared type ``tp``; DetailError naming the field."""
    if _is_record(tp):
        if not isinstance(value, dict):
            raise DetailError(f"{where or 'the detail'} must be an object")
        if strict:
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(tp)})
            if unknown:
                raise DetailError(f"{_at(where, unknown[0])} is not a field of {tp.__name__}")
        made = {}
        for f, ftp, _ in _fields(tp):
            name = f.name
            if name not in value:
                if f.default is dataclasses.MISSING:
                    raise DetailError(f"{_at(where, name)} is missing")
                continue
            made[name] = from_json(ftp, value[name], _at(where, name), strict=strict)
        return tp(**made)
    if is_union(tp):
        if value is None and type(None) in get_args(tp):
            return None
        inner = next(a for a in get_args(tp) if a is not type(None))
        return from_json(inner, value, where, strict=strict)
    if get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise DetailError(f"{where} must be a list")
        (inner, _) = get_args(tp)
        return tuple(
            from_json(inner, v, f"{where}[{i}]", strict=strict) for i, v in enumerate(value)
        )
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    _check(tp, value, where)
    return value


def loads(tp: type[T], text: str | None) -> T:
    """A stored detail's JSON text read as its declared type ``tp`` (erasure.ledger.details).

    How the ledger's readers take a detail apart: by attribute, so that mypy
    holds each read to the declaration. ``erasure verify`` decodes every
    detail, so on a ledger it passes this cannot fail; a misfit is a changed
    ledger: :class:`LedgerMismatch` (78), pointing to verify.
    """
    try:
        made: T = from_json(tp, json.loads(text if text is not None else "null"))
    except ValueError as exc:  # DetailError, or text that is not JSON
        raise LedgerMismatch(
            f"a recorded {tp.__name__} does not fit its declaration ({exc}): "
            "run `erasure verify JOB`"
        ) from None
    return made


_OBJECTS = (dict, Mapping)  # a JSON object: dict[str, X] in details, Mapping[str, X] in results
_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check(tp: Any, value: Any, where: str) -> None:
    """Whether ``value`` is of the plain type ``tp`` (no dataclass): DetailError if not."""
    if tp is Any:
        return
    if is_union(tp):
        if value is None and type(None) in get_args(tp):
            return
        for option in get_args(tp):
            if option is type(None):
                continue
            try:
                _check(option, value, where)
            except DetailError:
                continue
            if _is_record(option):
                _check_dataclass(option, value, where)
            return
        raise DetailError(f"{where} must be {_describe(tp)}")
    origin = get_origin(tp)
    if origin is Literal:
        if isinstance(value, bool) or value not in get_args(tp):
            raise DetailError(f"{where} must be one of {', '.join(map(str, get_args(tp)))}")
        return
    if origin in _OBJECTS:
        if not isinstance(value, Mapping):
            raise DetailError(f"{where} must be an object")
        (_, inner) = get_args(tp)
        for k, v in value.items():
            _check(inner, v, f"{where}.{k}")
        return
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DetailError(f"{where} must be a list")
        return  # the items are checked by the caller, one by one
    if _is_record(tp):
        _check_dataclass(tp, value, where)
        return
    if tp is not bool and isinstance(value, bool):
        raise DetailError(f"{where} must be {_describe(tp)}")
    if tp is float and isinstance(value, int):
        return
    if not isinstance(value, tp):
        raise DetailError(f"{where} must be {_describe(tp)}")


def _check_dataclass(tp: Any, value: Any, where: str) -> None:
    if not isinstance(value, tp):
        raise DetailError(f"{where} must be a {tp.__name__}")


def _describe(tp: Any) -> str:
    if is_union(tp):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _is_record(tp: Any) -> bool:
    """Whether ``tp`` is a declared detail type (a dataclass), not a plain one."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)
