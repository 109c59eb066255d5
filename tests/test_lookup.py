"""``erasure lookup``'s keys: the same key the intake gave the same person, or a clear refusal.

The strongest check is agreement with the intake: a value read from a real
input file and the same value typed at ``lookup`` (in any of the forms the
intake accepts) must give one key, or lookup would answer "never heard of".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import intake
from erasure import job as job_mod
from erasure.errors import UsageError
from erasure.keys import Keyer
from erasure.lookup import keys_for
from tests.conftest import LEDGER_KEY

KEYER = Keyer(LEDGER_KEY.encode())


@pytest.fixture(name="job")
def _job(write_job: Callable[..., Path], tmp_path: Path) -> job_mod.Job:
    """Email, phone, profile id and two custom fields, database 3, resource 24."""
    (tmp_path / "in.csv").write_text(
        "email,phone,pid,crm,alt\n Ivan.Petrov@Example.COM ,8 (916) 123-45-67,P-77,C-1,X-9\n",
        encoding="utf-8",
    )
    path = write_job(
        '[api]\nbase_url = "http://127.0.0.1:9"\n'
        '[input]\npath = "in.csv"\ndb_id = 3\nresource_id = 24\n'
        '[input.columns]\nemail = "email"\nphone = "phone"\nprofile_id = "pid"\n'
        'custom = [{ column = "crm", field_name = "CRM_ID" }, '
        '{ column = "alt", field_name = "ALT_ID" }]\n'
        '[ledger]\npath = "ledger.sqlite"\n'
    )
    return job_mod.load(path)


def _intake_keys(job: job_mod.Job) -> dict[tuple[str, str | None], str]:
    """(matching, field name) -> key, as the intake keyed the file's one row."""
    items = intake.read(job, KEYER).items
    return {(r["matching"], r["field_name"]): r["key"] for r in items.iter_rows(named=True)}


@pytest.mark.parametrize(
    ("matching", "typed", "field"),
    [
        ("email", "ivan.petrov@example.com", None),
        ("email", "  IVAN.PETROV@EXAMPLE.COM\t", None),
        ("phone", "+7 916 123-45-67", None),
        ("phone", "89161234567", None),
        ("phone", "8 (916) 123-45-67", None),
        ("profile_id", "P-77", None),
        ("profile_id", " P-77 ", None),
    ],
)
def test_lookup_gives_the_key_the_intake_gave(
    job: job_mod.Job, matching: str, typed: str, field: str | None
) -> None:
    assert [_intake_keys(job)[(matching, field)]] == keys_for(job, KEYER, matching, typed)


def test_a_custom_value_is_looked_up_under_every_custom_field(job: job_mod.Job) -> None:
    intake_keys = _intake_keys(job)
    assert [intake_keys[("custom", "CRM_ID")]] == keys_for(job, KEYER, "custom", "C-1")[:1]
    assert [intake_keys[("custom", "ALT_ID")]] == keys_for(job, KEYER, "custom", "X-9")[1:]
    assert 2 == len(set(keys_for(job, KEYER, "custom", "C-1")))


def test_database_and_resource_default_to_the_job_s_and_can_be_named(job: job_mod.Job) -> None:
    mine = keys_for(job, KEYER, "email", "ivan.petrov@example.com")
    assert mine == keys_for(job, KEYER, "email", "ivan.petrov@example.com", db_id=3, resource_id=24)
    other_db = keys_for(job, KEYER, "email", "ivan.petrov@example.com", db_id=4)
    other_resource = keys_for(job, KEYER, "email", "ivan.petrov@example.com", resource_id=25)
    assert len({*mine, *other_db, *other_resource}) == 3
    # resource_id belongs to email and phone matching only
    pid = keys_for(job, KEYER, "profile_id", "P-77")
    assert pid == keys_for(job, KEYER, "profile_id", "P-77", resource_id=99)


@pytest.mark.parametrize(
    ("matching", "raw", "says"),
    [
        ("email", "not-an-email", "the email given is not usable"),
        ("phone", "12", "the phone given is not usable"),
        ("profile_id", "   ", "the profile id given is not usable"),
    ],
)
def test_an_unusable_value_is_a_usage_error_that_does_not_quote_it(
    job: job_mod.Job, matching: str, raw: str, says: str
) -> None:
    with pytest.raises(UsageError) as info:
        keys_for(job, KEYER, matching, raw)
    assert str(info.value).startswith(says)
    assert raw.strip() == "" or raw not in str(info.value)
    assert 64 == info.value.exit_code


def test_a_job_reading_the_database_from_a_column_needs_db_id(
    write_job: Callable[..., Path],
) -> None:
    job = job_mod.load(write_job(input={"path": "in.csv", "db_id": None, "db_id_column": "db"}))
    with pytest.raises(UsageError, match="pass --db-id N"):
        keys_for(job, KEYER, "email", "a@example.com")
    assert 1 == len(keys_for(job, KEYER, "email", "a@example.com", db_id=2))


def test_custom_lookup_needs_a_mapped_custom_field(write_job: Callable[..., Path]) -> None:
    job = job_mod.load(write_job())
    with pytest.raises(UsageError, match="maps no custom field"):
        keys_for(job, KEYER, "custom", "C-1")
