"""``status --json`` is a contract: a real one conforms to its one declaration, as the README says.

The declaration is :mod:`erasure.status_result` (frozen dataclasses, a field
per key, its type in JSON's terms). A real ledger, made by runs against the
real sandbox (a finished file, a stopped one whose file is then gone, an
invalid row), is read by ``erasure status --json``; every key and value
shape is checked against the dataclasses, both ways: a key missing, a key
the declaration lacks, or a value of another shape is named.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, Union

import pytest

from erasure import cli, partition, status
from erasure import job as job_mod
from erasure import ledger as L
from erasure.keys import Role
from erasure.ledger import Outcome
from erasure.pair_rows import CameBack
from erasure.status_result import (
    JsonObject,
    LedgerStatus,
    Reappeared,
    hints,
    reference,
    shape,
)
from tests import e2e
from tests.sandbox_fixture import Sandbox

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def problems(value: Any, tp: Any, where: str = "status") -> list[str]:
    """Where ``value`` (parsed JSON) differs from the declared type ``tp`` (empty: none)."""
    if tp == JsonObject:
        return [] if isinstance(value, dict) else [f"{where}: {value!r} is not an object"]
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return []
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return problems(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [
            p
            for i, v in enumerate(value)
            for p in problems(v, typing.get_args(tp)[0], f"{where}[{i}]")
        ]
    if origin is not None and issubclass(origin, Mapping):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        item = typing.get_args(tp)[1]
        return [p for k, v in value.items() for p in problems(v, item, f"{where}.{k}")]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        declared = hints(tp)
        found = [f"{where}.{k}: not declared" for k in value if k not in declared]
        found += [f"{where}.{k}: missing" for k in declared if k not in value]
        return found + [
            p
            for k, t in declared.items()
            if k in value
            for p in problems(value[k], t, f"{where}.{k}")
        ]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{where}: {value!r} is not {shape(tp)}"]


@pytest.fixture(name="ledger_job")
def _ledger_job(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> Path:
    """A finished file (still on disk), a stopped one (then gone), an invalid row."""
    sandbox = sandbox_factory(tariff_limit_after=5)  # then every delete is refused: 69
    job = e2e.job(write_job, sandbox.url)
    e2e.emails_csv(tmp_path / "in.csv", range(3), extra=["T99,not-an-email"])
    assert 1 == e2e.run(job)  # 1: the invalid row
    later = e2e.emails_csv(tmp_path / "later.csv", range(10, 16))
    assert 69 == e2e.run(job, "--input", str(later))
    later.unlink()
    return job


def test_a_real_status_json_conforms_to_its_declaration(
    ledger_job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert 0 == cli.main(["status", str(ledger_job), "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert [] == problems(printed, LedgerStatus)
    # the optional parts are there, so their shapes were checked too
    assert printed["last_run"] and printed["chain_head"]
    assert printed["open_elsewhere"] and printed["safe_to_delete"] and printed["invalid"] == 1
    assert set(printed["incomplete_reasons"]) == {r.value for r in partition.REASONS}
    # a run holding the ledger: "running", read through the use case's own call
    loaded = job_mod.load(ledger_job)
    with L.Ledger(loaded.ledger.path, loaded.keyer(Role.CHAIN)) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, led.next_run(), detail="{}")])
    with closing(L.open_readonly(loaded.ledger.path)) as db:
        running = json.loads(json.dumps(status.status(db, is_running=True).as_json()))
    assert running["running"] is not None
    assert [] == problems(running, LedgerStatus)


def test_a_missing_or_an_unknown_key_or_shape_is_named() -> None:
    """The check can fail: each kind of difference is found and named."""
    good = {"seq": 3, "link": "ab"}
    from erasure.status_result import ChainHead

    assert [] == problems(good, ChainHead)
    assert ["status.link: missing"] == problems({"seq": 3}, ChainHead)
    assert ["status.extra: not declared"] == problems({**good, "extra": 1}, ChainHead)
    assert ["status.seq: '3' is not integer"] == problems({**good, "seq": "3"}, ChainHead)
    assert ["status.seq: True is not integer"] == problems({**good, "seq": True}, ChainHead)


def test_every_outcome_and_every_reappeared_state_has_its_key() -> None:
    """The counts built from closed sets (Outcome, CameBack) have a declared field each."""
    declared = hints(LedgerStatus)
    assert {o.value for o in Outcome} <= set(declared)
    assert all(declared[o.value] is int for o in Outcome)
    assert {c.value for c in CameBack} == set(hints(Reappeared)) - {
        "profiles",
        "by_profile_id",
        "by_identifier",
    }


def test_the_readme_names_the_declared_keys() -> None:
    """The README's table is the declaration's, and its words name no key that is not one."""
    table = "\n".join(reference())
    assert table in README, "README's status --json table differs; paste:\n" + table
    start = README.index("`status --json` prints one object")
    words = README[start : README.index(table, start)]
    nested = {
        name
        for tp in hints(LedgerStatus).values()
        for inner in [
            tp,
            *typing.get_args(tp),
            *(a for t in typing.get_args(tp) for a in typing.get_args(t)),
        ]
        if isinstance(inner, type) and dataclasses.is_dataclass(inner)
        for name in hints(inner)
    }
    named = set(re.findall(r"`([a-z_]+)`", words))
    assert named and named <= set(hints(LedgerStatus)) | nested, (
        named - set(hints(LedgerStatus)) - nested
    )
