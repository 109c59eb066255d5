"""A held request's receipt: its identifiers are `held`, its reason is the partition's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from erasure import cli
from tests import e2e
from tests.sandbox_fixture import Sandbox


def test_a_held_requests_receipt_says_held_and_checks(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    key = tmp_path / "receipts.key"
    assert 0 == cli.main(["keygen", "--out", str(key)])
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(
        write_job,
        sandbox.url,
        receipts={"signing_key_file": "receipts.key", "issuer": "ACME LLC, DPO office"},
    )
    assert 0 == cli.main(["hold", str(job), "--email", "user1@example.com", "--reason", "L-7"])
    assert 0 == e2e.run(job)
    out = tmp_path / "T1.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(out)])
    document = json.loads(out.read_bytes())["receipt"]
    assert document["status"] == "incomplete"
    assert [c["outcome"] for c in document["identifiers"]] == ["held"]
    assert "L-7" in document["identifiers"][0]["decision"]  # who, since and why
    assert "held" in json.dumps(document["reasons"])
    assert "user1@example.com" not in out.read_text()
    pub = str(key) + ".pub"
    assert 0 == cli.main(["check-receipt", str(out), "--public-key", pub, "--job", str(job)])
    page = tmp_path / "T1.html"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(page)])
    assert "L-7" in page.read_text()
    assert 0 == cli.main(["check-receipt", str(page), "--public-key", pub, "--job", str(job)])
    # a receipt with nothing decided keeps its earlier shape: no decision member
    other = tmp_path / "T2.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T2", "--out", str(other)])
    assert "decision" not in json.loads(other.read_bytes())["receipt"]["identifiers"][0]


def test_a_released_requests_receipt_is_pending_then_a_later_one_complete(
    write_job: Callable[..., Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    key = tmp_path / "receipts.key"
    assert 0 == cli.main(["keygen", "--out", str(key)])
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(
        write_job,
        sandbox.url,
        receipts={"signing_key_file": "receipts.key", "issuer": "ACME LLC, DPO office"},
    )
    assert 0 == cli.main(["hold", str(job), "--email", "user1@example.com", "--reason", "L-7"])
    assert 0 == e2e.run(job)
    held = tmp_path / "held.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(held)])
    assert 0 == cli.main(["release", str(job), "--email", "user1@example.com", "--reason", "ok"])
    out = tmp_path / "T1.json"
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(out)])
    claims = json.loads(out.read_bytes())["receipt"]["identifiers"]
    assert [c["outcome"] for c in claims] == ["pending"]  # open again: the next run sends it
    pub = str(key) + ".pub"
    # the receipt issued while held is still valid, and the release supersedes it
    assert 0 == cli.main(["check-receipt", str(held), "--public-key", pub, "--job", str(job)])
    assert 0 == e2e.run(job)
    assert 0 == cli.main(["receipt", str(job), "--request-id", "T1", "--out", str(out)])
    assert json.loads(out.read_bytes())["receipt"]["status"] == "complete"
