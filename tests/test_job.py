"""The job file: every key checked, defaults applied, secrets read on demand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import job as job_mod
from erasure.errors import ConfigError, FileMissing, SecretMissing


def test_defaults_and_relative_paths(write_job: Callable[..., Path], tmp_path: Path) -> None:
    """A minimal job gets the contract's defaults; paths resolve beside the job file."""
    job = job_mod.load(write_job())
    assert tmp_path / "in.csv" == job.input.path
    assert tmp_path / "ledger.sqlite" == job.ledger.path
    assert frozenset({404}) == job.api.codes.not_found
    assert frozenset({401, 403}) == job.api.codes.token
    assert frozenset({402}) == job.api.codes.unavailable
    assert (16, 20.0, 8, 300.0, True) == (
        job.run.concurrency,
        job.run.rate_per_s,
        job.run.max_attempts,
        job.run.retry_after_cap_s,
        job.run.preflight,
    )
    assert ("json", 10.0, "RU", 30) == (
        job.api.format,
        job.api.timeout_s,
        job.input.phone_region,
        job.input.deadline_days,
    )
    assert "ALTCRAFT_TOKEN" == job.api.token_env
    assert "ERASURE_LEDGER_KEY" == job.ledger.key_env
    assert tmp_path / "ledger-rejects.csv" == job.rejects_path


def test_full_example_parses(write_job: Callable[..., Path], tmp_path: Path) -> None:
    """Every key of the contract's example is accepted."""
    path = write_job(
        api={
            "base_url": "https://example.altcraft.com",
            "token_file": "secrets/token",
            "format": "xml",
            "timeout_s": 5,
            "ca_bundle": "corp-ca.pem",
            "codes": {"not_found": [404, 440], "token": [401, 403], "unavailable": [402]},
        },
        input={
            "path": "requests.csv",
            "db_id": 1,
            "resource_id": 24,
            "request_id_column": "ticket",
            "received_at_column": "received_at",
            "deadline_days": 30,
            "phone_region": "ru",
            "columns": {
                "email": "Email",
                "phone": "Phone",
                "profile_id": "Profile ID",
                "custom": {"column": "crm_id", "field_name": "CRM_ID"},
            },
        },
        run={
            "concurrency": 4,
            "rate_per_s": 2.5,
            "max_attempts": 3,
            "retry_after_cap_s": 60,
            "preflight": False,
        },
        ledger={"path": "l/ledger.sqlite", "key_file": "secrets/key"},
    )
    job = job_mod.load(path)
    assert "xml" == job.api.format
    assert frozenset({404, 440}) == job.api.codes.not_found
    assert tmp_path / "corp-ca.pem" == job.api.ca_bundle
    assert "RU" == job.input.phone_region
    assert (job_mod.CustomColumn("crm_id", "CRM_ID"),) == job.input.columns.custom
    assert job.input.columns.explicit
    assert tmp_path / "secrets" / "key" == job.ledger.key_file
    assert job.api.token_env is None
    assert "secrets" not in str(job.settings())


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"api": {"base_urll": "x"}}, "unknown key api.base_urll"),
        ({"run": {"concurency": 4}}, "unknown key run.concurency"),
        ({"input": {"columns": {"emial": "E"}}}, "unknown key input.columns.emial"),
        ({"api": {"codes": {"notfound": [1]}}}, "unknown key api.codes.notfound"),
        ({"extra": {"a": 1}}, "unknown section or key extra"),
        ({"api": {"base_url": "http://example.com"}}, "http:// for a host that is not loopback"),
        ({"api": {"base_url": "https://h/?token=x"}}, "must not carry a query"),
        ({"api": {"format": "yaml"}}, 'api.format must be "json" or "xml"'),
        ({"api": {"timeout_s": 0}}, "api.timeout_s must be greater than 0"),
        ({"run": {"concurrency": "4"}}, "run.concurrency must be an integer"),
        ({"run": {"preflight": 1}}, "run.preflight must be true or false"),
        ({"run": {"rate_per_s": True}}, 'run.rate_per_s must be a number or "auto"'),
        ({"run": {"rate_per_s": "fast"}}, 'run.rate_per_s must be a number or "auto"'),
        ({"run": {"rate_per_s": 0}}, "run.rate_per_s must be a finite number greater than 0"),
        (
            {"run": {"rate_per_s": "auto"}},
            'run.max_rate_per_s is required with rate_per_s = "auto"',
        ),
        (
            {"run": {"rate_per_s": "auto", "max_rate_per_s": -1}},
            "run.max_rate_per_s must be a finite number greater than 0",
        ),
        (
            {"run": {"rate_per_s": "auto", "max_rate_per_s": "200"}},
            "run.max_rate_per_s must be an integer or a number",
        ),
        (
            {"run": {"max_rate_per_s": 200}},
            'run.max_rate_per_s is only used with rate_per_s = "auto"',
        ),
        ({"input": {"db_id_column": "db"}}, "exactly one of db_id and db_id_column"),
        ({"input": {"phone_region": "XX"}}, "is not a region code"),
        ({"api": {"codes": {"not_found": [404], "token": [404]}}}, "code 404 is in both"),
        ({"api": {"token_env": "A", "token_file": "f"}}, "are both set"),
        ({"input": {"columns": {"custom": {"column": "c"}}}}, "needs both column and field_name"),
    ],
)
def test_bad_job_names_the_key(
    write_job: Callable[..., Path], sections: dict[str, dict[str, object]], message: str
) -> None:
    """Each mistake is a ConfigError (78) naming the key and why."""
    with pytest.raises(ConfigError, match=None) as info:
        job_mod.load(write_job(**sections))
    assert message in str(info.value)
    assert 78 == info.value.exit_code


def test_invalid_toml(write_job: Callable[..., Path]) -> None:
    """A file that is not TOML is one clear ConfigError."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        job_mod.load(write_job("[api\nbase_url = 1"))


def test_missing_job_file(tmp_path: Path) -> None:
    """A job file that does not exist is FileMissing (66)."""
    with pytest.raises(FileMissing) as info:
        job_mod.load(tmp_path / "nope.toml")
    assert 66 == info.value.exit_code


def test_secrets_from_env_and_file(write_job: Callable[..., Path], tmp_path: Path) -> None:
    """Secrets come from the named variable or file, trailing newline stripped."""
    (tmp_path / "tok").write_text("s3cret\n")
    job = job_mod.load(write_job(api={"token_file": "tok"}, ledger={"key_env": "MY_KEY"}))
    assert "s3cret" == job.token()
    assert b"0123456789abcdef-x" == job.ledger_key({"MY_KEY": "0123456789abcdef-x"})
    with pytest.raises(SecretMissing, match="MY_KEY") as info:
        job.ledger_key({})
    assert "0123" not in str(info.value)
    with pytest.raises(SecretMissing, match="too short"):
        job.ledger_key({"MY_KEY": "short"})


def test_missing_token_names_the_variable(write_job: Callable[..., Path]) -> None:
    """A missing token names the variable and the key that names it."""
    job = job_mod.load(write_job(api={"token_env": "NO_SUCH_VAR"}))
    with pytest.raises(SecretMissing, match=r"NO_SUCH_VAR.*token_env"):
        job.token({})


def test_missing_token_file(write_job: Callable[..., Path]) -> None:
    """A token file that does not exist is named."""
    job = job_mod.load(write_job(api={"token_file": "missing-token"}))
    with pytest.raises(SecretMissing, match="missing-token does not exist"):
        job.token()


def test_auto_rate_needs_and_keeps_its_maximum(write_job: Callable[..., Path]) -> None:
    """``rate_per_s = "auto"`` with ``max_rate_per_s``: the maximum is the ceiling."""
    job = job_mod.load(write_job(run={"rate_per_s": "auto", "max_rate_per_s": 200}))
    assert ("auto", 200.0, 200.0) == (
        job.run.rate_per_s,
        job.run.max_rate_per_s,
        job.run.ceiling_per_s,
    )
    assert job.run.auto_rate
    assert {"rate_per_s": "auto", "max_rate_per_s": 200.0}.items() <= job.settings().items()
    fixed = job_mod.load(write_job(run={"rate_per_s": 20, "max_rate_per_s": None}))
    assert (20.0, None, 20.0, False) == (
        fixed.run.rate_per_s,
        fixed.run.max_rate_per_s,
        fixed.run.ceiling_per_s,
        fixed.run.auto_rate,
    )


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
@pytest.mark.parametrize("key", ["rate_per_s", "max_rate_per_s"])
def test_a_rate_must_be_finite(write_job: Callable[..., Path], key: str, value: str) -> None:
    """TOML's inf and nan are numbers, but no rate: 78 naming the key, not a crash later."""
    auto = 'rate_per_s = "auto"\n' if key == "max_rate_per_s" else ""
    text = (
        '[api]\nbase_url = "http://127.0.0.1:9"\n[input]\npath = "in.csv"\ndb_id = 1\n'
        f"[run]\n{auto}{key} = {value}\n"
    )
    with pytest.raises(ConfigError, match=f"run.{key} must be a finite number"):
        job_mod.load(write_job(text))
