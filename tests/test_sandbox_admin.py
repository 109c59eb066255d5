"""The sandbox's admin calls over a real socket: export, restore a backup, re-import,
a rate limit that moves mid-run, latency as a range, and the counters."""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from erasure.errors import UsageError
from erasure.sandbox import export
from erasure.sandbox.cli import parser, settings_from
from erasure.sandbox.faults import Dice
from erasure.sandbox.settings import SettingError, Settings, update
from tests.sandbox_fixture import (  # noqa: F401  (fixtures, also imported by conftest)
    Sandbox,
    _sandbox,
    _sandbox_factory,
)

Factory = Callable[..., Sandbox]

ROWS = [
    {"db_id": 1, "email": "anna@example.com", "phone": "+79161234567", "CRM_ID": "00123"},
    {"db_id": 1, "email": "boris@example.com", "tags": "vip, b2b"},
    {"db_id": 1, "email": "vera@example.com", "phone": "+79161234569"},
    {"db_id": 2, "email": "anna@example.com"},
]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_writes_the_live_profiles_as_an_altcraft_export(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sandbox = sandbox_factory(profiles=ROWS)
    anna, boris, vera = sandbox.profiles[:3]
    assert sandbox.delete(email="vera@example.com").status_code == 200
    out = tmp_path / "export.csv"
    assert export(sandbox.url, 1, out) == 2
    assert out.read_text(encoding="utf-8").splitlines()[0] == "_id,email,phone,CRM_ID,tags"
    assert read_csv(out) == [
        {
            "_id": anna.profile_id,
            "email": "anna@example.com",
            "phone": "+79161234567",
            "CRM_ID": "00123",
            "tags": "",
        },
        {
            "_id": boris.profile_id,
            "email": "boris@example.com",
            "phone": "",
            "CRM_ID": "",
            "tags": "vip, b2b",
        },
    ]
    assert vera.deleted
    assert sandbox.export(tmp_path / "db2.csv", db_id=2) == 1
    with pytest.raises(httpx.HTTPStatusError):
        export(sandbox.url, 9, tmp_path / "none.csv")
    answer = sandbox.client.get(f"{sandbox.url}/__sandbox/export")
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "the export needs ?db_id=N (one integer)"},
    )


def test_restore_brings_deleted_profiles_back_with_their_ids(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first, second, third = sandbox.profiles[1:4]
    for i in (1, 2, 3):
        assert sandbox.delete(email=f"user{i}@example.com").status_code == 200
    assert sandbox.restore([first.profile_id]) == [first.profile_id]
    assert sandbox.restore(last=1) == [third.profile_id]  # the last deleted
    assert not first.deleted and second.deleted and not third.deleted
    sandbox.export(tmp_path / "after.csv")
    ids = {row["_id"]: row for row in read_csv(tmp_path / "after.csv")}
    assert ids[first.profile_id]["email"] == "user1@example.com"
    assert ids[first.profile_id]["phone"] == "+79000000001"
    assert second.profile_id not in ids
    # A later sweep deletes it again, by profile id, and the counters show both deletes.
    again = sandbox.delete(matching="profile_id", profile_id=first.profile_id)
    assert again.json()["data"]["profile_id"] == first.profile_id
    stats = sandbox.stats()
    assert stats["deletes_per_profile"][first.profile_id] == 2
    assert (stats["restored"], stats["erased_profiles"]) == (2, 2)  # now deleted: 1st, 2nd
    assert sandbox.deletes()[second.profile_id] == 1


def test_restore_refuses_what_was_not_deleted(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="no deleted profile"):
        sandbox.restore([sandbox.profiles[0].profile_id])
    with pytest.raises(ValueError, match="no deleted profile"):
        sandbox.restore(["ffffffffffffffffffffffff"])
    with pytest.raises(ValueError, match="name profile_ids"):
        sandbox.restore()
    assert sandbox.restore(last=5) == []  # nothing deleted yet: nothing to restore
    assert sandbox.stats()["restored"] == 0


def test_reimport_adds_a_new_profile_with_a_new_id(sandbox: Sandbox, tmp_path: Path) -> None:
    old = sandbox.profiles[5]
    assert sandbox.delete(email="user5@example.com").status_code == 200
    new_id = sandbox.reimport(email="User5@Example.com", phone="+79000000005")
    assert new_id != old.profile_id and len(new_id) == 24
    sandbox.export(tmp_path / "export.csv")
    rows = {row["_id"]: row for row in read_csv(tmp_path / "export.csv")}
    assert rows[new_id]["email"] == "user5@example.com" and old.profile_id not in rows
    erased = sandbox.delete(email="user5@example.com").json()
    assert erased["data"]["profile_id"] == new_id  # the identifier reaches the new profile
    assert sandbox.stats()["imported"] == 1
    with pytest.raises(ValueError, match="email or a phone"):
        sandbox.reimport()


def test_the_rate_limit_moves_mid_run_and_its_429_carries_retry_after(
    sandbox: Sandbox,
) -> None:
    sandbox.set_rate_limit(10_000)
    passed = threading.Event()
    limited: list[httpx.Response] = []

    def worker() -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            body = {"token": sandbox.token, "db_id": 1, "email": "nobody@example.com"}
            for i in range(10_000):  # bounded: the limit below stops it long before
                response = client.post(sandbox.delete_url, json=body)
                if response.status_code == 429:
                    limited.append(response)
                    return
                if i == 20:
                    passed.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert passed.wait(10)  # the run is under way, unlimited in practice
    sandbox.set_rate_limit(0.01, burst=1)  # lowered mid-run
    thread.join(10)
    assert len(limited) == 1
    assert int(limited[0].headers["retry-after"]) >= 1
    stats = sandbox.stats()
    assert stats["fired"]["rate_limit"] == 1
    assert stats["answers"]["rate_limited"] == 1
    assert stats["answers"]["not_found"] >= 21


def test_a_lowered_limit_keeps_no_fresh_burst(sandbox: Sandbox) -> None:
    sandbox.set_rate_limit(0.001, burst=2)
    assert sandbox.delete(email="user1@example.com").status_code == 200
    sandbox.set_rate_limit(0.001, burst=100)  # a bigger bucket, not a full one
    statuses = [sandbox.delete(email=f"user{i}@example.com").status_code for i in range(2, 5)]
    assert statuses == [200, 429, 429]


def test_latency_is_a_range_from_the_command_line_and_the_admin_call(sandbox: Sandbox) -> None:
    args = parser().parse_args(["--latency-ms", "50-200", "--hangup-rst", "0.5"])
    settings = settings_from(args)
    assert (settings.latency_ms, settings.latency_jitter_ms) == (125, 75)
    assert settings.hangup_rst == 0.5
    dice = Dice(seed=1)
    draws = [dice.latency_s(settings) for _ in range(2000)]
    assert 0.05 <= min(draws) < 0.06 and 0.19 < max(draws) <= 0.2  # the whole range, no more
    with pytest.raises(UsageError, match="latency-ms: the range's low end"):
        settings_from(parser().parse_args(["--latency-ms", "200-50"]))
    with pytest.raises(SettingError):
        update(Settings(), {"latency_ms": "a-b"})
    assert sandbox.configure(latency_ms=[0, 2])["latency_jitter_ms"] == 1


def test_every_fault_counts_where_it_fired(sandbox: Sandbox) -> None:
    sandbox.configure(fail_429=1)
    sandbox.delete(email="user1@example.com")
    sandbox.configure(fail_429=0, fail_5xx=1, fail_5xx_codes=[502])
    sandbox.delete(email="user1@example.com")
    sandbox.configure(fail_5xx=0, malformed_after_delete=1)
    sandbox.delete(email="user1@example.com")
    assert sandbox.fired() == {"fail_429": 1, "fail_5xx": 1, "malformed_after_delete": 1}
