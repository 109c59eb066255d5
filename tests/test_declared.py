"""The three strict readers read by one declaration each (erasure.declared).

The job file, the receipt document and the sandbox's switches are frozen
dataclasses whose every field is declared (``key``, ``member``, ``switch``);
a field added without a declaration is refused before anything is read.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from erasure.declared import Undeclared, fields_of, unoptional
from erasure.errors import UsageError
from erasure.job import Job, schema
from erasure.job.sections import Api
from erasure.ledger import Outcome
from erasure.receipts.document import Claim, Receipt, encode, member
from erasure.sandbox.cli import parser, settings_from
from erasure.sandbox.settings import (
    SWITCHES,
    SettingError,
    Settings,
    amount,
    flag,
    probability,
    switch,
    update,
)


def _classes(cls: type) -> Iterator[type]:
    """``cls`` and every declared dataclass its fields hold (as the file holds them)."""
    yield cls
    for f, tp in schema.fields_of(cls):
        if f.metadata.get("internal"):
            continue  # derived by the job section's finish, never read
        inner = unoptional(tp)
        if get_origin(inner) is tuple:
            inner = get_args(inner)[0]
        if dataclasses.is_dataclass(inner):
            yield from _classes(inner)  # type: ignore[arg-type]


@pytest.mark.parametrize("root", [Job, Receipt, Settings])
def test_every_field_of_every_reader_is_declared(root: type) -> None:
    found = list(_classes(root))
    assert len(found) >= (1 if root is Settings else 5)
    for cls in found:
        for f, _ in fields_of(cls):
            assert f.metadata["declared"], f"{cls.__name__}.{f.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Api(Api):
    added: int = 0  # a key added without key()


@dataclasses.dataclass(frozen=True, slots=True)
class _Claim(Claim):
    added: int = 0  # a member added without member()


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings(Settings):
    added: float = 0.0  # a switch added without switch()


@dataclasses.dataclass(frozen=True, slots=True)
class _Declared:
    a: int = member(1)
    b: int = switch(2, amount, "N", "b")
    c: int = schema.key(3, "c")


def test_a_field_added_without_a_declaration_is_refused() -> None:
    """Each reader refuses a dataclass holding a field it was not told how to read."""
    for cls in (_Api, _Claim, _Settings):
        with pytest.raises(Undeclared, match=rf"{cls.__name__}\.added has no declaration"):
            fields_of(cls)
    with pytest.raises(Undeclared, match="added"):
        schema.read(_Api, {"url": "http://127.0.0.1"}, "api", Path("."))
    claim = _Claim(1, 1, "email", "k" * 32, Outcome.ERASED, False)
    with pytest.raises(Undeclared, match="added"):
        encode(claim)
    assert [f.name for f, _ in fields_of(_Declared)] == ["a", "b", "c"]  # every wrapper declares


def test_each_switch_reads_its_fields_type() -> None:
    """A switch's reader returns what its field holds: the type is declared once, agreeing."""
    hints = typing.get_type_hints(Settings)
    for name, declared in SWITCHES.items():
        assert typing.get_type_hints(declared["read"])["return"] == hints[name], name


_BAD: dict[str, Any] = {"echo_identifier": "maybe", "record_times": 2}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_a_bad_switch_is_refused_naming_it(name: str) -> None:
    """Every declared switch refuses a value it cannot read, by its JSON key and its flag."""
    bad = _BAD.get(name, "x")
    with pytest.raises(SettingError) as err:
        update(Settings(), {name: bad})
    assert (err.value.name, str(err.value)) == (name, f"setting {name!r}: {err.value.reason}")
    option = "--" + name.replace("_", "-")
    if SWITCHES[name]["read"] is flag:
        assert settings_from(parser().parse_args([option])) == update(Settings(), {name: True})
        return
    with pytest.raises(UsageError) as usage:
        settings_from(parser().parse_args([option, str(bad)]))
    assert (str(usage.value), usage.value.exit_code) == (f"{option}: {err.value.reason}", 64)


def test_help_lists_every_switch_as_declared() -> None:
    text = "".join(parser().format_help().split())  # argparse wraps lines where it likes
    for name, declared in SWITCHES.items():
        option = "--" + name.replace("_", "-")
        assert f"{option}{declared['metavar'] or ''}" in text
        assert "".join(declared["help"].split()) in text


def test_a_fault_is_on_when_its_switch_leaves_its_default() -> None:
    """Each fault switch turns on the one path its declaration names (the fast path skips it)."""
    paths = {"accept": "hangups", "before": "faults_before", "after": "faults_after"}
    paths["connection"] = "connection_faults"  # the raw front's
    off = Settings()
    assert not any(getattr(off, path) for path in paths.values())
    named = set()
    for f, _ in fields_of(Settings):
        hits = f.metadata["hits"]
        assert hits is not None or f.metadata["read"] is not probability, f.name  # a fault's
        if hits is None:
            continue
        named.add(hits)
        on = dataclasses.replace(off, **{f.name: 0.0 if f.default is None else 0.5})
        assert [p for p in paths.values() if getattr(on, p)] == [paths[hits]], f.name
    assert named == set(paths)
    assert dataclasses.replace(off, rate_limit=0.0).faults_before  # a limit of 0 is a limit
