"""Every sandbox fault alone and in pairs, through the run, at rates that make them common.

Each scenario runs the erasure (the use case ``erasure run`` calls, with a
short retry policy) against the real sandbox on a loopback socket, at most
three times, and must end with:

- no traceback, and exit codes from the contract (75 while work is left, then 0);
- every identifier final: erased, or not_found when an earlier request erased
  it and its answer was lost, which is then flagged in doubt;
- each profile deleted once, apart from resends of an identifier flagged in
  doubt in the ledger, never more often than requests were sent for it;
- nothing sent for an identifier after its final outcome, and a ledger that verifies;
- proof from the sandbox's ``fired`` counters that each of its switches fired.

``make test`` runs each fault alone and a covering set of pairs (each fault
in four pairs); ``make test-long`` (``ERASURE_TEST_LONG=1``) runs every pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from erasure import ledger as ledger_mod
from erasure import partition
from erasure import status as status_mod
from erasure.keys import Keyer
from erasure.ratelimit import RateLimiter, Recovering
from erasure.run import Backoff, Options
from tests import e2e
from tests.conftest import LEDGER_KEY, LONG
from tests.sandbox_fixture import Sandbox
from tests.virtual_time import VirtualClock

TIMEOUT_S = 0.5  # api.timeout_s: a hang or a trickle costs a worker this long
HANG_S = 4 * TIMEOUT_S  # seconds a hanging sandbox holds a request: well past the timeout

# name: (sandbox settings, the switch whose "fired" counter proves it, if any).
# Per-request faults fire at 0.25-0.3 over 30+ deletes, per-connection ones at
# 0.5 over the 16 connections of the pool: that none fires is below 1e-4.
FAULTS: dict[str, tuple[dict[str, Any], str | None]] = {
    "5xx": ({"fail_5xx": 0.25, "fail_5xx_codes": "500,502,503,504"}, "fail_5xx"),
    "429": ({"fail_429": 0.25, "retry_after": 0}, "fail_429"),
    # the run asks 200/s: its second request comes within 20 ms of the first, before any
    # 429 of another fault can slow it down, and meets an empty bucket
    "ratelimit": ({"rate_limit": 50, "rate_burst": 1}, "rate_limit"),
    "hang": ({"hang": 0.25, "hang_s": HANG_S}, "hang"),
    "drop": ({"drop": 0.25}, "drop"),
    "malformed": ({"malformed": 0.25}, "malformed"),
    "hang-after-delete": (
        {"hang_after_delete": 0.25, "hang_s": HANG_S},
        "hang_after_delete",
    ),
    "drop-after-delete": ({"drop_after_delete": 0.25}, "drop_after_delete"),
    "malformed-after-delete": ({"malformed_after_delete": 0.25}, "malformed_after_delete"),
    # added to every request, so no counter: it changes timing, not answers
    "latency": ({"latency_ms": 15, "latency_jitter_ms": 10}, None),
    "hangup-fin": ({"hangup_fin": 0.5}, "hangup_fin"),
    "hangup-rst": ({"hangup_rst": 0.5}, "hangup_rst"),
    "early-503": ({"early_503": 0.3}, "early_503"),
    # the run's pace (200/s: 5 ms between requests) leaves a connection idle for longer
    "idle-close": ({"idle_close": 0.3, "idle_close_ms": 1}, "idle_close"),
    "obs-fold": ({"obs_fold": 0.3}, "obs_fold"),
    "bare-lf": ({"bare_lf": 0.3}, "bare_lf"),
    "oversize": ({"oversize": 0.3, "oversize_bytes": 2 << 20}, "oversize"),
    "gzip-bomb": ({"gzip_bomb": 0.3, "gzip_bomb_bytes": 16 << 20}, "gzip_bomb"),
    "trickle": ({"trickle": 0.25, "trickle_s": 1.5 * TIMEOUT_S}, "trickle"),  # > timeout_s
}
NAMES = list(FAULTS)


def covering_pairs(names: list[str], offsets: tuple[int, ...] = (1, 5)) -> list[tuple[str, str]]:
    """A bounded set of pairs in which every name meets ``2 * len(offsets)`` others."""
    n = len(names)
    return [(names[i], names[(i + k) % n]) for k in offsets for i in range(n)]


PAIRS = list(itertools.combinations(NAMES, 2)) if LONG else covering_pairs(NAMES)
CASES = [(name,) for name in NAMES] + PAIRS

N = 30  # identifiers per scenario
RUNS = 3  # every identifier is final after at most this many runs
MAX_ATTEMPTS = 10


RATE = 200  # [run] rate_per_s, requests per second
# Faults whose sandbox side runs on the real clock (its token bucket, its idle
# timer): against them the pace must be real too, or nothing would pace the run.
REAL_PACE = frozenset({"ratelimit", "idle-close"})


def options(names: tuple[str, ...]) -> Options:
    """Retries wait milliseconds, and the pacer waits as little as the faults allow.

    A 429 halves the pace, which climbs back over 30 s of successes
    (tests/test_ratelimit.py holds that, in virtual time); the matrix tests
    outcomes, so its pacer runs on a virtual clock, whose waits cost
    nothing, or, against a fault on the real clock, recovers in 1 s. The
    waits a Retry-After asks for stay real.
    """
    if REAL_PACE.intersection(names):

        def pacer() -> RateLimiter:
            return RateLimiter(RATE, controller=Recovering(RATE, recovery_s=1.0))

    else:
        clock = VirtualClock()

        def pacer() -> RateLimiter:
            return RateLimiter(RATE, clock=clock, sleep=clock.sleep)

    backoff = Backoff(max_attempts=MAX_ATTEMPTS, base_s=0.01)
    return Options(install_signal_handlers=False, backoff=backoff, pacer=pacer)


def test_the_covering_set_meets_every_fault_in_pairs() -> None:
    pairs = covering_pairs(NAMES)
    assert len(set(map(frozenset, pairs))) == len(pairs)  # no pair twice, none with itself
    assert all(a != b for a, b in pairs)
    for name in NAMES:
        assert 4 == sum(name in pair for pair in pairs)


@pytest.mark.parametrize("names", CASES, ids=["+".join(c) for c in CASES])
def test_fault_combination_ends_in_final_outcomes(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    names: tuple[str, ...],
) -> None:
    faults: dict[str, Any] = {}
    for name in names:
        faults.update(FAULTS[name][0])
    sandbox = sandbox_factory(generate_count=N, seed=NAMES.index(names[-1]) * 7 + 1, **faults)
    e2e.emails_csv(tmp_path / "in.csv", range(N))
    job = e2e.job(
        write_job,
        sandbox.url,
        api={"timeout_s": TIMEOUT_S},
        run={"max_attempts": MAX_ATTEMPTS, "concurrency": 16, "rate_per_s": RATE},
    )
    ledger = tmp_path / "ledger.sqlite"
    codes: list[int] = []
    for _ in range(RUNS):  # an unlucky identifier may use all its attempts; the next run retries
        codes.append(e2e.run_with(job, options(names)))
        if codes[-1] != 75:
            break
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    said = [line for line in captured.err.splitlines() if '"level": "error"' in line]
    assert codes[-1] == 0 and set(codes[:-1]) <= {75}, (codes, said[-3:])

    rows = e2e.ledger_pairs(ledger)
    assert N == len(rows)
    assert {"erased", "not_found"} >= {r["outcome"] for r in rows}
    assert all(r["in_doubt"] for r in rows if r["outcome"] == "not_found")
    stats = sandbox.stats()
    assert N == stats["erased_profiles"]

    # each profile deleted once, apart from resends of an identifier flagged in doubt
    by_ticket = {r["request_id"]: r for r in rows}
    sent: dict[str, int] = {}
    for e in e2e.events(ledger, "SELECT key FROM events WHERE kind = 'sent'"):
        sent[e["key"]] = sent.get(e["key"], 0) + 1
    for i, profile in enumerate(sandbox.profiles):
        deletes = stats["deletes_per_profile"].get(profile.profile_id, 0)
        row = by_ticket[f"T{i}"]
        assert 1 <= deletes <= sent[row["key"]]
        assert deletes == 1 or row["in_doubt"], f"profile {i} deleted {deletes} times"

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
    assert (account.pairs, account.requests, account.complete) == (N, N, N)
    # the partition (issue 21): every reason, in its order, counted the same from the kept
    # summaries as from every row
    with closing(ledger_mod.open_readonly(ledger)) as db:
        kept = status_mod.status(db).as_json()
    assert list(account.incomplete_reasons) == [r.value for r in partition.REASONS]
    assert kept["incomplete_reasons"] == dict(account.incomplete_reasons)
    assert sum(account.incomplete_reasons.values()) == account.incomplete == 0

    # each switch of the scenario fired
    fired = stats["fired"]
    for name in names:
        switch = FAULTS[name][1]
        assert switch is None or fired.get(switch, 0) > 0, f"{switch} never fired: {fired}"
