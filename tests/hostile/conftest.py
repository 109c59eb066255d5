"""A finished ledger to attack: a real run against the sandbox, with receipts configured."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox


@dataclass(frozen=True)
class Finished:
    """A job whose run has finished: every file a command could be pointed at."""

    folder: Path
    job: Path
    input: Path
    ledger: Path
    key: Path  # the receipts signing key (key.pub beside it)


@pytest.fixture
def finished(write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path) -> Finished:
    key = tmp_path / "receipts.key"
    assert 0 == cli.main(["keygen", "--out", str(key)])
    source = e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = e2e.job(
        write_job,
        sandbox.url,
        receipts={"signing_key_file": "receipts.key", "issuer": "ACME LLC, DPO office"},
    )
    assert 0 == e2e.run(job)
    return Finished(tmp_path, job, source, tmp_path / "ledger.sqlite", key)
