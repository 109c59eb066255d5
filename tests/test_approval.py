"""Four eyes: signed plans and approvals against the real sandbox on loopback.

Each refusal is exit 78 with its own words, and nothing is sent (not even
the preflight); an approved plan sends exactly its pairs, and a stopped
approved run resumes under the same approval.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erasure import approval, cli, planning
from erasure import job as job_mod
from erasure.receipts import keygen
from tests import e2e
from tests.sandbox_fixture import Sandbox


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    return {name: keygen(folder / f"{name}.key").private_path for name in ("planner", "dpo", "eve")}


def _job(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    keys: dict[str, Path],
    **approval_: object,
) -> Path:
    section: dict[str, object] = {
        "required": True,
        "signing_key_file": str(keys["planner"]),
        "approvers": [str(keys["dpo"]) + ".pub"],
        "needed": 1,
        "expires": "24h",
    }
    section.update(approval_)
    return e2e.job(
        write_job, sandbox.url, approval={k: v for k, v in section.items() if v is not None}
    )


def _plan(job: Path, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "tonight.plan.json"
    code, _, err = _cli("plan", str(job), "--out", str(out), *extra)
    assert 0 == code, err
    return out


def _approve(plan: Path, key: Path, out: Path) -> tuple[int, str, str]:
    return _cli("approve", str(plan), "--key", str(key), "--out", str(out))


def _run(job: Path, *args: str) -> tuple[int, str, str]:
    return _cli("run", str(job), "--no-progress", "--log-format", "json", *args)


def _refused(result: tuple[int, str, str], words: str, sandbox: Sandbox) -> None:
    code, _, err = result
    assert 78 == code, err
    assert words in err, err
    assert 0 == sandbox.stats()["requests"]  # nothing sent, not even the preflight


@pytest.fixture
def setup(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    keys: dict[str, Path],
) -> tuple[Sandbox, Path, Path]:
    sandbox = sandbox_factory(generate_count=30)
    e2e.emails_csv(tmp_path / "in.csv", range(10))
    job = _job(write_job, sandbox, keys)
    plan = _plan(job, tmp_path)
    approved = tmp_path / "approved.json"
    assert 0 == _approve(plan, keys["dpo"], approved)[0]
    return sandbox, job, approved


def test_an_approved_plan_runs_and_sends_exactly_its_pairs(
    setup: tuple[Sandbox, Path, Path], tmp_path: Path
) -> None:
    sandbox, job, approved = setup
    doc = json.loads(approved.read_text())
    assert doc["plan"]["pairs"]["count"] == 10
    assert [s["role"] for s in doc["signatures"]] == ["planner", "approver"]
    assert "user1@" not in approved.read_text()  # keys and words, never an identifier
    code, _, err = _run(job, "--plan", str(approved))
    assert 0 == code, err
    assert 10 == len(sandbox.stats()["deletes_per_profile"])
    kinds = [e["kind"] for e in e2e.events(tmp_path / "ledger.sqlite")]
    assert "policy" in kinds and "approval" in kinds
    assert 0 == cli.main(["verify", str(job)])
    # the report names the approval beside every pair it covered
    report = tmp_path / "report.csv"
    assert 0 == cli.main(["report", str(job), "--out", str(report)])
    with report.open(encoding="utf-8-sig") as f:
        decisions = {row["decision"] for row in csv.DictReader(f)}
    dpo = json.loads(approved.read_text())["signatures"][1]["public_key_sha256"]
    assert 1 == len(decisions)
    assert decisions.pop().startswith(f"approved by sha256:{dpo[:16]} (plan sha256:")


def test_a_required_approval_missing_is_refused(setup: tuple[Sandbox, Path, Path]) -> None:
    sandbox, job, _ = setup
    _refused(_run(job), "sends nothing without --plan APPROVED", sandbox)


def test_one_approver_short(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    keys: dict[str, Path],
) -> None:
    sandbox = sandbox_factory(generate_count=30)
    e2e.emails_csv(tmp_path / "in.csv", range(5))
    job = _job(
        write_job,
        sandbox,
        keys,
        approvers=[str(keys["dpo"]) + ".pub", str(keys["eve"]) + ".pub"],
        needed=2,
    )
    plan = _plan(job, tmp_path)
    approved = tmp_path / "approved.json"
    assert 0 == _approve(plan, keys["dpo"], approved)[0]
    _refused(_run(job, "--plan", str(approved)), "has 1 of the 2 approvals needed", sandbox)
    _refused(_run(job, "--plan", str(plan)), "has 0 of the 2 approvals needed", sandbox)


def test_an_approval_by_the_planners_own_key_is_refused(
    setup: tuple[Sandbox, Path, Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    sandbox, _, _ = setup
    code, _, err = _approve(tmp_path / "tonight.plan.json", keys["planner"], tmp_path / "x.json")
    assert 78 == code and "the planner's key" in err
    assert not (tmp_path / "x.json").exists()
    assert 0 == sandbox.stats()["requests"]


def test_a_signature_by_a_key_not_in_approvers(
    setup: tuple[Sandbox, Path, Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    sandbox, job, _ = setup
    by_eve = tmp_path / "eve.json"
    assert 0 == _approve(tmp_path / "tonight.plan.json", keys["eve"], by_eve)[0]
    _refused(
        _run(job, "--plan", str(by_eve)), "signed by a key not in [approval] approvers", sandbox
    )


def test_an_expired_approval(
    setup: tuple[Sandbox, Path, Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    sandbox, job, _ = setup
    old = planning.make(job_mod.load(job), now=datetime.now(UTC) - timedelta(days=2))
    plan = approval.write(old, tmp_path / "old.plan.json", job_mod.load(job).perms)
    approved = tmp_path / "old.approved.json"
    assert 0 == _approve(plan, keys["dpo"], approved)[0]
    _refused(_run(job, "--plan", str(approved)), "it expired at", sandbox)


def test_a_plan_for_yesterdays_file(setup: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    sandbox, job, approved = setup
    e2e.emails_csv(tmp_path / "in.csv", range(10, 20))
    _refused(_run(job, "--plan", str(approved)), "is not the file it was made for", sandbox)


def test_a_plan_for_another_base_url(setup: tuple[Sandbox, Path, Path], tmp_path: Path) -> None:
    sandbox, job, approved = setup
    text = job.read_text().replace(sandbox.url, sandbox.url.replace("127.0.0.1", "localhost"))
    job.write_text(text)
    _refused(_run(job, "--plan", str(approved)), "it was made for base_url", sandbox)


def test_a_plan_whose_settings_changed(setup: tuple[Sandbox, Path, Path]) -> None:
    sandbox, job, approved = setup
    job.write_text(job.read_text().replace("rate_per_s = 500", "rate_per_s = 400"))
    _refused(_run(job, "--plan", str(approved)), "settings changed", sandbox)


def test_a_tampered_plan(setup: tuple[Sandbox, Path, Path]) -> None:
    sandbox, job, approved = setup
    doc = json.loads(approved.read_text())
    doc["plan"]["expires_at"] = "2099-01-01T00:00:00+00:00"
    approved.write_text(json.dumps(doc))
    _refused(_run(job, "--plan", str(approved)), "does not verify", sandbox)


def test_a_weakened_approval_section_is_refused(
    setup: tuple[Sandbox, Path, Path], write_job: Callable[..., Path], keys: dict[str, Path]
) -> None:
    sandbox, job, approved = setup
    assert 0 == _run(job, "--plan", str(approved))[0]  # the policy is recorded now
    before = sandbox.stats()["requests"]
    weak = _job(write_job, sandbox, keys, required=False)
    code, _, err = _run(weak)
    assert 78 == code and "weakens the [approval] policy" in err, err
    assert before == sandbox.stats()["requests"]
    no_section = e2e.job(write_job, sandbox.url)
    code, _, err = _run(no_section)
    assert 78 == code and "approval is no longer required" in err, err
    assert before == sandbox.stats()["requests"]


def test_a_stopped_approved_run_resumes_under_the_same_approval(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    keys: dict[str, Path],
) -> None:
    sandbox = sandbox_factory(generate_count=30)
    e2e.emails_csv(tmp_path / "in.csv", range(20))
    job = e2e.job(
        write_job,
        sandbox.url,
        run={"concurrency": 1, "rate_per_s": 5},
        approval={
            "required": True,
            "signing_key_file": str(keys["planner"]),
            "approvers": [str(keys["dpo"]) + ".pub"],
        },
    )
    plan = _plan(job, tmp_path)
    approved = tmp_path / "approved.json"
    assert 0 == _approve(plan, keys["dpo"], approved)[0]
    code, _, err = _run(job, "--plan", str(approved), "--max-duration", "2s")
    assert 75 == code, err
    assert len(sandbox.stats()["deletes_per_profile"]) < 20
    code, _, err = _run(job, "--plan", str(approved))
    assert 0 == code, err
    deletes = sandbox.stats()["deletes_per_profile"]
    assert 20 == len(deletes) and set(deletes.values()) == {1}


def test_a_sweep_needs_its_own_approved_plan(
    sandbox: Sandbox, write_job: Callable[..., Path], tmp_path: Path, keys: dict[str, Path]
) -> None:
    e2e.emails_csv(tmp_path / "in.csv", range(4))
    sweep = {"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email"}}
    plain = e2e.job(write_job, sandbox.url, sweep=sweep)
    assert 0 == e2e.run(plain)
    restored = sandbox.restore(last=2)
    export = tmp_path / "export.csv"
    sandbox.export(export)
    job = e2e.job(
        write_job,
        sandbox.url,
        sweep=sweep,
        approval={
            "required": True,
            "signing_key_file": str(keys["planner"]),
            "approvers": [str(keys["dpo"]) + ".pub"],
        },
    )
    sent = sandbox.stats()["requests"]
    code, _, err = _cli("sweep", str(job), "--export", str(export), "--log-format", "json")
    assert 78 == code and "erasure sweep sends nothing without --plan" in err, err
    assert sent == sandbox.stats()["requests"]
    run_plan = tmp_path / "tonight.plan.json"  # a run's plan does not cover a sweep
    assert 0 == _cli("plan", str(job), "--out", str(run_plan))[0]
    assert 0 == _approve(run_plan, keys["dpo"], tmp_path / "run.approved.json")[0]
    code, _, err = _cli(
        "sweep", str(job), "--export", str(export), "--log-format", "json",
        "--plan", str(tmp_path / "run.approved.json"),
    )  # fmt: skip
    assert 78 == code and "not erasure sweep" in err, err
    plan = tmp_path / "sweep.plan.html"
    code, out, err = _cli("plan", str(job), "--out", str(plan), "--sweep", str(export))
    assert 0 == code, err
    assert "erasure sweep" in out and "@example.com" not in plan.read_text()
    approved = tmp_path / "sweep.approved.json"
    assert 0 == _approve(plan, keys["dpo"], approved)[0]  # the HTML view is a plan too
    code, _, err = _cli(
        "sweep", str(job), "--export", str(export), "--log-format", "json", "--plan", str(approved)
    )
    assert 1 == code, err  # profiles came back: a person looks
    assert all(sandbox.deletes()[pid] == 2 for pid in restored)


def test_plan_prints_the_plan_on_stdout_and_logs_only_on_stderr(
    setup: tuple[Sandbox, Path, Path], tmp_path: Path
) -> None:
    _, job, _ = setup
    code, out, err = _cli("plan", str(job), "--out", str(tmp_path / "again.json"))
    assert 0 == code, err
    assert not any(line.startswith("{") for line in out.splitlines())  # no log line
    assert out.splitlines()[-1].startswith("plan: ")
