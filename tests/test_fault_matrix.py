"""Every sandbox fault alone and in pairs, at rates that make retries common.

Each combination must end with every identifier erased (or not_found when an
earlier request erased it and its answer was lost, which is then flagged in
doubt), no identifier sent after its recorded final outcome, each profile
that received more than one delete accounted for by an in-doubt flag, and
a ledger that verifies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from erasure import ledger as ledger_mod
from erasure import status as status_mod
from erasure.keys import Keyer
from erasure.run import Backoff, Options
from tests import e2e
from tests.conftest import LEDGER_KEY
from tests.sandbox_fixture import Sandbox

FAULTS: dict[str, dict[str, Any]] = {
    "5xx": {"fail_5xx": 0.25},
    "429": {"fail_429": 0.25, "retry_after": 0},
    "ratelimit": {"rate_limit": 150, "rate_burst": 5},
    "hang": {"hang": 0.04, "hang_s": 3},
    "drop": {"drop": 0.15},
    "malformed": {"malformed": 0.15},
    "hang-after-delete": {"hang_after_delete": 0.04, "hang_s": 3},
    "drop-after-delete": {"drop_after_delete": 0.15},
    "malformed-after-delete": {"malformed_after_delete": 0.15},
    "latency": {"latency_ms": 15, "latency_jitter_ms": 10},
}
CASES = [(a,) for a in FAULTS] + list(itertools.combinations(FAULTS, 2))


MAX_ATTEMPTS = 10
# Retries wait milliseconds, not seconds: the matrix is about outcomes, not pacing.
SHORT_BACKOFF = Options(backoff=Backoff(max_attempts=MAX_ATTEMPTS, base_s=0.01))


@pytest.mark.parametrize("names", CASES, ids=["+".join(c) for c in CASES])
def test_fault_combination_ends_in_final_outcomes(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    names: tuple[str, ...],
) -> None:
    faults: dict[str, Any] = {}
    for name in names:
        faults.update(FAULTS[name])
    n = 24
    sandbox = sandbox_factory(generate_count=n, seed=len(names) * 7 + 1, **faults)
    e2e.emails_csv(tmp_path / "in.csv", range(n))
    job = e2e.job(
        write_job,
        sandbox.url,
        api={"timeout_s": 1},
        run={"max_attempts": MAX_ATTEMPTS, "concurrency": 6, "rate_per_s": 400},
    )
    ledger = tmp_path / "ledger.sqlite"
    for _ in range(4):  # an unlucky identifier may use all its attempts; the next run retries
        code = e2e.run_with(job, SHORT_BACKOFF)
        if code != 75:
            break
    assert 0 == code
    rows = e2e.ledger_pairs(ledger)
    assert n == len(rows)
    assert {"erased", "not_found"} >= {r["outcome"] for r in rows}
    assert all(r["in_doubt"] for r in rows if r["outcome"] == "not_found")
    stats = sandbox.stats()
    assert n == stats["erased_profiles"]
    resent = sum(1 for c in stats["deletes_per_profile"].values() if c > 1)
    assert resent <= sum(1 for r in rows if r["in_doubt"])
    # nothing was sent for a key after its final outcome
    last_final: dict[str, int] = {}
    for e in e2e.events(ledger):
        if e["kind"] == "outcome" and e["outcome"] in ledger_mod.FINAL:
            last_final.setdefault(e["key"], e["seq"])
        if e["kind"] == "sent":
            assert e["key"] not in last_final, "sent after its final outcome"
    assert ledger_mod.verify(ledger, Keyer(LEDGER_KEY.encode())).ok
    # the accounting adds up after every scenario: pairs by outcome, requests by state
    with closing(ledger_mod.open_readonly(ledger)) as db:
        _, _, account = status_mod.account(db)
    assert all(i.holds for i in account.identities()), account.lines()
    assert (account.pairs, account.requests, account.complete) == (n, n, n)
