"""Every matching mode, JSON and XML, resource_id and tags, end to end.

A real input file in each supported format, the real CLI, the sandbox on a
loopback socket: the profiles each row names are the ones that get erased.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests import e2e
from tests.sandbox_fixture import Sandbox

PROFILES = [
    {
        "db_id": 1,
        "profile_id": "a" * 24,
        "email": "anna@example.com",
        "phone": "+79161234567",
        "resources": "24",
        "CRM_ID": "1001",
        "tags": "vip, newsletter",
    },
    {
        "db_id": 1,
        "profile_id": "b" * 24,
        "email": "boris@example.com",
        "phone": "+79161234568",
        "resources": "7",
        "CRM_ID": "1002",
        "tags": "promo",
    },
    {
        "db_id": 2,
        "profile_id": "c" * 24,
        "email": "clara@example.com",
        "phone": "+79161234569",
        "resources": "",
        "CRM_ID": "1003",
        "tags": "",
    },
    {
        "db_id": 1,
        "profile_id": "d" * 24,
        "email": "dima@example.com",
        "phone": "+79161234570",
        "resources": "",
        "CRM_ID": "1004",
        "tags": "",
    },
]


def _write(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.write_csv(path)
    elif path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".xlsx":
        frame.write_excel(path)
    else:
        frame.write_ndjson(path)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx", ".ndjson"])
def test_each_mode_erases_the_profile_it_names(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    fmt: str,
    suffix: str,
) -> None:
    sandbox = sandbox_factory(profiles=PROFILES)
    frame = pl.DataFrame(
        {
            "ticket": ["T1", "T2", "T3", "T4"],
            "db": ["1", "1", "2", "1"],
            "email": ["Anna@Example.com", None, None, None],
            "phone": [None, "8 (916) 123-45-68", None, None],
            "profile_id": [None, None, "c" * 24, None],
            "crm": [None, None, None, "1004"],
        }
    )
    path = tmp_path / f"in{suffix}"
    _write(frame, path)
    job = e2e.job(
        write_job,
        sandbox.url,
        api={"format": fmt},
        input={
            "path": path.name,
            "db_id_column": "db",
            "db_id": None,
            "columns": {
                "email": "email",
                "phone": "phone",
                "profile_id": "profile_id",
                "custom": {"column": "crm", "field_name": "CRM_ID"},
            },
        },
    )
    assert 0 == e2e.run(job)
    rows = {r["request_id"]: r for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert {"T1": "erased", "T2": "erased", "T3": "erased", "T4": "erased"} == {
        k: v["outcome"] for k, v in rows.items()
    }
    assert {"a" * 24, "b" * 24, "c" * 24, "d" * 24} == {r["profile_id"] for r in rows.values()}
    assert ["custom", "email", "phone", "profile_id"] == sorted(
        r["matching"] for r in rows.values()
    )


def test_resource_id_narrows_email_and_phone_matching(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """With resource_id 24 only anna (subscribed to 24) is found; boris is not_found."""
    sandbox = sandbox_factory(profiles=PROFILES)
    (tmp_path / "in.csv").write_text("ticket,email\nT1,anna@example.com\nT2,boris@example.com\n")
    job = e2e.job(write_job, sandbox.url, input={"resource_id": 24})
    assert 0 == e2e.run(job)
    rows = {r["request_id"]: r["outcome"] for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert {"T1": "erased", "T2": "not_found"} == rows
    assert not any(p.deleted for p in sandbox.profiles if p.email == "boris@example.com")


def test_tag_fields_match_a_combination(
    sandbox_factory: Callable[..., Sandbox], write_job: Callable[..., Path], tmp_path: Path
) -> None:
    """A tag-type custom field is matched by a combination such as "vip, newsletter"."""
    sandbox = sandbox_factory(profiles=PROFILES)
    (tmp_path / "in.csv").write_text('ticket,tags\nT1,"vip, newsletter"\nT2,"vip, promo"\n')
    job = e2e.job(
        write_job,
        sandbox.url,
        input={"columns": {"custom": {"column": "tags", "field_name": "tags"}}},
    )
    assert 0 == e2e.run(job)
    rows = {r["request_id"]: r for r in e2e.ledger_pairs(tmp_path / "ledger.sqlite")}
    assert "erased" == rows["T1"]["outcome"] and "a" * 24 == rows["T1"]["profile_id"]
    assert "not_found" == rows["T2"]["outcome"]
    assert [p.profile_id for p in sandbox.profiles if p.deleted] == ["a" * 24]
