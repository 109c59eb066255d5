"""erasure keygen, receipt and check-receipt through the CLI, on a real sandbox run."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _setup(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path, ids: range = range(5)
) -> tuple[Path, Path]:
    key = tmp_path / "receipts.key"
    assert 0 == cli.main(["keygen", "--out", str(key)])
    e2e.emails_csv(tmp_path / "in.csv", ids)
    job = e2e.job(
        write_job,
        sandbox.url,
        receipts={"signing_key_file": "receipts.key", "issuer": "ACME LLC, DPO office"},
    )
    assert 0 == e2e.run(job)
    return job, key


def test_keygen_writes_a_pair_and_a_ledger_key_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, ledger_key = tmp_path / "r.key", tmp_path / "ledger.key"
    assert 0 == cli.main(["keygen", "--out", str(key), "--ledger-key", str(ledger_key)])
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ledger_key).st_mode) == 0o600
    assert len(ledger_key.read_text().strip()) == 64
    assert (tmp_path / "r.key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes()
    capsys.readouterr()
    assert 74 == cli.main(["keygen", "--out", str(key)])
    assert "exists" in capsys.readouterr().err
    assert key.read_bytes() == before


def test_a_receipt_is_issued_and_checked_with_and_without_the_ledger(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, key = _setup(write_job, sandbox, tmp_path)
    out = tmp_path / "T3.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T3", "--out", str(out)])
    assert "Request T3 is complete" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    document = json.loads(out.read_bytes())["receipt"]
    assert document["status"] == "complete"
    assert [c["outcome"] for c in document["identifiers"]] == ["erased"]
    assert "user3@example.com" not in out.read_text()
    html = tmp_path / "T3.html"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T3", "--out", str(html)])

    # checking needs no secret at all
    monkeypatch.delenv("ERASURE_LEDGER_KEY")
    monkeypatch.delenv("ALTCRAFT_TOKEN")
    pub = f"{key}.pub"
    for path in (out, html):
        capsys.readouterr()
        assert 0 == cli.main(["check-receipt", str(path), "--public-key", pub, "--job", str(job)])
        said = capsys.readouterr().out
        assert said.startswith("valid:") and "intact" in said
    assert 0 == cli.main(["check-receipt", str(out), "--public-key", pub])

    # a changed byte
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(out.read_bytes().replace(b'"erased"', b'"rejected"'))
    capsys.readouterr()
    assert 1 == cli.main(["check-receipt", str(tampered), "--public-key", pub])
    assert "not valid" in capsys.readouterr().out
    # not a receipt at all
    assert 65 == cli.main(["check-receipt", str(tmp_path / "in.csv"), "--public-key", pub])


def test_a_ledger_changed_after_issue_is_named(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, key = _setup(write_job, sandbox, tmp_path)
    out = tmp_path / "T1.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(out)])
    cited = json.loads(out.read_bytes())["receipt"]["identifiers"][0]["seq"]
    with closing(sqlite3.connect(tmp_path / "ledger.sqlite")) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET profile_id = 'forged' WHERE seq = ?", (cited,))
        db.commit()
    capsys.readouterr()
    code = cli.main(["check-receipt", str(out), "--public-key", f"{key}.pub", "--job", str(job)])
    assert code == 1
    said = capsys.readouterr().out
    assert said.startswith("not valid") and f"event {cited}" in said
    # and no new receipt is signed from the broken ledger
    assert 78 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(out)])


def test_later_events_supersede_a_receipt(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, key = _setup(write_job, sandbox, tmp_path)
    out = tmp_path / "T2.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T2", "--out", str(out)])
    # the same request asks for one more identifier later
    (tmp_path / "in.csv").write_text("ticket,email\nT2,user50@example.com\n")
    assert 0 == e2e.run(job)
    capsys.readouterr()
    assert 0 == cli.main(
        ["check-receipt", str(out), "--public-key", f"{key}.pub", "--job", str(job)]
    )
    assert "superseded" in capsys.readouterr().out


def test_receipt_refusals(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, _ = _setup(write_job, sandbox, tmp_path, range(1))
    capsys.readouterr()
    assert 64 == cli.main(
        ["receipt", str(job), "--request-id", "T9", "--out", str(tmp_path / "x.json")]
    )
    assert "the ledger has never seen request 'T9'" in capsys.readouterr().err
    assert 64 == cli.main(
        ["receipt", str(job), "--request-id", "T0", "--out", str(tmp_path / "x.pdf")]
    )
    missing = tmp_path / "no" / "such" / "dir" / "x.json"
    assert 64 == cli.main(["receipt", str(job), "--request-id", "T0", "--out", str(missing)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
