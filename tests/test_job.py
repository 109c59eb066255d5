"""The job file: every key checked, defaults applied, secrets read on demand."""

from __future__ import annotations

import grp
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import job as job_mod
from erasure import keys
from erasure import ledger as L
from erasure.errors import ConfigError, FileMissing, SecretMissing
from erasure.files import OWNER_ONLY
from tests.conftest import LEDGER_KEY
from tests.ledger_details import FINISHED, STARTED


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
            "run.max_rate_per_s must be a number",
        ),
        (
            {"run": {"max_rate_per_s": 200}},
            'run.max_rate_per_s is only used with rate_per_s = "auto"',
        ),
        ({"input": {"db_id_column": "db"}}, "exactly one of db_id and db_id_column"),
        ({"input": {"phone_region": "XX"}}, "is not a region code"),
        ({"api": {"codes": {"not_found": [404], "token": [404]}}}, "code 404 is in both"),
        ({"api": {"token_env": "A", "token_file": "f"}}, "are both set"),
        (
            {"input": {"columns": {"custom": {"column": "c"}}}},
            "input.columns.custom.field_name is required",
        ),
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
    (tmp_path / "tok").chmod(0o600)
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


def secret_file(path: Path, text: str, mode: int) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("which", ["token", "key"])
def test_a_secret_file_others_may_read_is_refused(
    write_job: Callable[..., Path], tmp_path: Path, which: str
) -> None:
    """A token or ledger key file with a group or other bit is 78, naming it and the fix."""
    path = secret_file(tmp_path / "secret", LEDGER_KEY, 0o644)
    section = "api" if which == "token" else "ledger"
    job = job_mod.load(write_job(**{section: {f"{which}_file": "secret"}}))
    read = job.token if which == "token" else job.keyer
    with pytest.raises(SecretMissing) as info:
        read()
    assert 78 == info.value.exit_code
    assert f"{section} {which} file {path} may be read by others (mode 0644)" in str(info.value)
    assert f"chmod 600 {path}" in str(info.value)
    assert LEDGER_KEY not in str(info.value)
    path.chmod(0o600)
    read()


def test_with_a_group_the_ledger_key_may_be_0640_but_not_world_readable(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    # only the ledger key may be the group's: the token stays 0600 (the contract, #19)
    group = grp.getgrgid(os.getegid()).gr_name
    path = secret_file(tmp_path / "key", "s3cret-ledger-key-0123456789", 0o640)
    job = job_mod.load(write_job(ledger={"group": group, "key_file": "key"}))
    assert (0o640, group) == (job.perms.mode, job.perms.group)
    assert b"s3cret-ledger-key-0123456789" == job.ledger_key()
    path.chmod(0o644)
    with pytest.raises(SecretMissing, match="may be read by others"):
        job.ledger_key()
    token = secret_file(tmp_path / "tok", "s3cret", 0o640)
    job = job_mod.load(write_job(api={"token_file": "tok"}, ledger={"group": group}))
    with pytest.raises(SecretMissing, match="may be read by others"):
        job.token()
    token.chmod(0o600)
    assert "s3cret" == job.token()


def test_no_group_means_owner_only(write_job: Callable[..., Path]) -> None:
    assert OWNER_ONLY == job_mod.load(write_job()).perms


def test_an_empty_group_is_refused(write_job: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match=r"ledger\.group must name a group"):
        job_mod.load(write_job(ledger={"group": " "}))


def test_a_new_ledger_gets_the_newest_derivation(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    job = job_mod.load(write_job())
    keyer = job.keyer()
    assert keys.DERIVATION_VERSION == keyer.derivation == "d2"
    assert None is job_mod.ledger_derivation(job.ledger.path)
    with L.Ledger(job.ledger.path, keyer):
        pass
    assert "d2" == job_mod.ledger_derivation(job.ledger.path)


def test_an_older_ledger_keeps_its_derivation(write_job: Callable[..., Path]) -> None:
    """A d1 ledger is read and extended with d1, and its chain still verifies."""
    job = job_mod.load(write_job())
    with L.Ledger(job.ledger.path, keys.Keyer(LEDGER_KEY.encode(), derivation="d1")) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail=STARTED)])
    keyer = job.keyer()
    assert "d1" == keyer.derivation
    with L.Ledger(job.ledger.path, keyer) as led:
        led.append([L.Event(L.Kind.RUN_FINISHED, 1, detail=FINISHED)])
    verdict = L.verify(job.ledger.path, job.keyer())
    assert (True, 3) == (verdict.ok, verdict.events)
    # under the new derivation the same key would not match the ledger
    with pytest.raises(ConfigError, match="derivation rules 'd1'"):
        L.verify(job.ledger.path, keys.Keyer(LEDGER_KEY.encode()))


def test_an_identifier_key_serves_identifiers_only(write_job: Callable[..., Path]) -> None:
    job = job_mod.load(write_job(ledger={"key_env": "ID_KEY"}))
    env = {"ID_KEY": keys.identifier_key_text(LEDGER_KEY.encode())}
    keyer = job.keyer(keys.Role.IDENTIFIER, env)
    assert keyer.fingerprint == keys.Keyer(LEDGER_KEY.encode()).fingerprint
    with pytest.raises(ConfigError) as info:
        job.keyer(keys.Role.CHAIN, env, command="erasure run")
    assert 78 == info.value.exit_code
    assert (
        "variable ID_KEY is an identifier key (erasure-idkey-v1:...): it serves lookup, "
        "screen and validate only, and erasure run needs the full ledger key"
    ) in str(info.value)
    with pytest.raises(ConfigError, match="identifier key"):
        job.ledger_key(env)


def test_an_identifier_key_cannot_serve_an_older_ledger(write_job: Callable[..., Path]) -> None:
    job = job_mod.load(write_job(ledger={"key_env": "ID_KEY"}))
    with L.Ledger(job.ledger.path, keys.Keyer(LEDGER_KEY.encode(), derivation="d1")):
        pass
    env = {"ID_KEY": keys.identifier_key_text(LEDGER_KEY.encode())}
    with pytest.raises(ConfigError, match="uses derivation d1, which has no separate"):
        job.keyer(keys.Role.IDENTIFIER, env)


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
