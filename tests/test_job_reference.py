"""The README's job-file reference is the parser's schema printed; what the schema promises."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import job as job_mod
from erasure.errors import ConfigError
from erasure.job import reference
from erasure.job.schema import fields_of, is_internal, is_table, unoptional

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_reference_is_the_schema_printed() -> None:
    """Regenerate with ``python -m erasure.job.reference --write README.md``."""
    assert reference.render() == reference.current(README)


def _keys(cls: type, prefix: str) -> list[str]:
    found = []
    for f, tp in fields_of(cls):
        if is_internal(f):
            continue
        if is_table(f):
            found += _keys(unoptional(tp), f"{prefix}{f.name}.")
        else:
            found.append(f"{prefix}{f.name}")
    return found


def test_every_key_is_a_row_of_its_section() -> None:
    """Each key appears in its own section's table, with a meaning."""
    text = reference.current(README)
    keys = _keys(job_mod.Job, "")
    assert {"input.header_row", "input.split_addresses", "screen.columns.email"} <= set(keys)
    for dotted in keys:
        section, name = dotted.rsplit(".", 1)
        block = text.split(f"#### `[{section}]`", 1)[1].split("####", 1)[0]
        row = re.search(rf"^\| `{name}` \|.*\| ([^|]+) \|$", block, re.M)
        assert row and row.group(1).strip(), dotted


def test_the_reference_changes_when_the_schema_does() -> None:
    """The comparison can fail: a README missing a row is not the schema printed."""
    text = reference.current(README)
    row = next(line for line in text.splitlines() if line.startswith("| `header_row`"))
    assert reference.render() != text.replace(row + "\n", "")


def test_a_job_without_receipts_or_sweep_loads(write_job: Callable[..., Path]) -> None:
    """Sections are needed by their commands only; [sweep] db_id is [input] db_id."""
    job = job_mod.load(write_job(input={"db_id": 7}))
    assert job.receipts is None
    assert 7 == job.sweep.database()
    assert ("email", "phone", True) == (
        job.sweep.columns.email,
        job.sweep.columns.phone,
        job.sweep.columns.explicit,
    )
    assert not job.screen.columns.explicit
    assert (None, False) == (job.input.header_row, job.input.split_addresses)


def test_receipts_without_issuer_loads_and_receipt_names_the_key(
    write_job: Callable[..., Path],
) -> None:
    job = job_mod.load(write_job(receipts={"signing_key_file": "k.pem"}))
    assert job.receipts is not None and job.receipts.issuer is None
    with pytest.raises(ConfigError, match=r"receipts\.issuer is required") as info:
        job.receipts.require()
    assert 78 == info.value.exit_code
    empty = job_mod.load(write_job(receipts={"issuer": "DPO"}))
    assert empty.receipts is not None
    with pytest.raises(ConfigError, match="one of signing_key_file and signing_key_env"):
        empty.receipts.require()


def test_sweep_db_id_is_needed_only_without_an_input_db_id(
    write_job: Callable[..., Path],
) -> None:
    job = job_mod.load(write_job(input={"db_id": None, "db_id_column": "db"}))
    with pytest.raises(ConfigError, match=r"sweep\.db_id is required when \[input\] uses"):
        job.sweep.database()
    own = job_mod.load(write_job(input={"db_id": None, "db_id_column": "db"}, sweep={"db_id": 3}))
    assert 3 == own.sweep.database()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"input": {"header_row": 0}}, "input.header_row must be greater than 0"),
        ({"input": {"header_row": "3"}}, "input.header_row must be an integer"),
        ({"input": {"split_addresses": "yes"}}, "input.split_addresses must be true or false"),
        ({"screen": {"columns": {"mail": "E"}}}, "unknown key screen.columns.mail"),
        ({"screen": {"column": {}}}, "unknown key screen.column"),
        ({"receipts": {"issuer": "x", "signer": "y"}}, "unknown key receipts.signer"),
        ({"sweep": {"db_id": 0}}, "sweep.db_id must be greater than 0"),
        ({"sweep": {"profile_id_column": " "}}, "sweep.profile_id_column must name a column"),
        ({"api": {"codes": {"token": [0]}}}, "api.codes.token must not contain 0 (success)"),
        ({"api": {"codes": {"token": ["401"]}}}, "api.codes.token must be a list of integers"),
        ({"ledger": {"key_env": "A B"}}, "ledger.key_env is not a variable name"),
        ({"input": {"columns": {"custom": [{"column": "c", "field_name": "F"}, 3]}}}, "custom[1]"),
    ],
)
def test_new_and_moved_keys_name_themselves(
    write_job: Callable[..., Path], sections: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        job_mod.load(write_job(**sections))
    assert message in str(info.value)
    assert 78 == info.value.exit_code


def test_new_input_keys_are_read(write_job: Callable[..., Path]) -> None:
    job = job_mod.load(
        write_job(input={"header_row": 3, "split_addresses": True}, screen={"columns": {}})
    )
    assert (3, True) == (job.input.header_row, job.input.split_addresses)
    assert {"header_row": 3, "split_addresses": True}.items() <= job.settings().items()
    screen = job_mod.load(write_job(screen={"columns": {"email": "E-mail"}}))
    assert ("E-mail", True) == (screen.screen.columns.email, screen.screen.columns.explicit)
