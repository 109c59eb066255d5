"""OpenDSR request files as input: only erasures are sent; hashes and other types are invalid."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure.errors import InputUnusable
from erasure.intake import opendsr
from erasure.keys import Keyer
from tests import e2e
from tests.sandbox_fixture import Sandbox

FOUR = [
    {
        "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-02T15:00:00Z",
        "subject_identities": [
            {
                "identity_type": "email",
                "identity_value": "user1@example.com",
                "identity_format": "raw",
            }
        ],
        "extensions": {
            "opendsr.mparticle.com": {
                "identities": [{"identity_type": "mobile_number", "identity_value": "+79000000002"}]
            }
        },
    },
    {
        "subject_request_id": "b7551968-d5d6-44b2-9831-815ac9017798",
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-03T15:00:00Z",
        "subject_identities": [
            {
                "identity_type": "email",
                "identity_value": "user3@example.com",
                "identity_format": "raw",
            },
            {
                "identity_type": "email",
                "identity_value": "0" * 64,
                "identity_format": "sha256",
            },
        ],
    },
    {
        "subject_request_id": "c7551968-d5d6-44b2-9831-815ac9017798",
        "subject_request_type": "access",
        "submitted_time": "2026-11-04T15:00:00Z",
        "subject_identities": [
            {
                "identity_type": "email",
                "identity_value": "user4@example.com",
                "identity_format": "raw",
            }
        ],
    },
    {
        "subject_request_id": "d7551968-d5d6-44b2-9831-815ac9017798",
        "subject_request_type": "erasure",
        "submitted_time": "2026-11-05T15:00:00Z",
        "subject_identities": {"email": {"value": "User5@Example.com", "encoding": "raw"}},
    },
]


def _job(write_job: Callable[..., Path], url: str, tmp_path: Path) -> Path:
    (tmp_path / "requests.json").write_text(json.dumps(FOUR), encoding="utf-8")
    return e2e.job(write_job, url, input={"path": "requests.json", "request_id_column": None})


def test_four_requests_erase_only_the_erasure_requests_people(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = sandbox_factory(generate_count=10)
    job = _job(write_job, sandbox.url, tmp_path)
    assert 1 == e2e.run(job)  # invalid records make exit 1
    pairs = e2e.ledger_pairs(tmp_path / "ledger.sqlite")
    got = sorted((p["request_id"][0], p["matching"], p["outcome"]) for p in pairs)
    assert [
        ("a", "email", "erased"),
        ("a", "phone", "erased"),
        ("b", "email", "erased"),
        ("d", "email", "erased"),
    ] == got
    live = {p for p in sandbox.stats()["deletes_per_profile"]}
    assert 4 == len(live)  # user1, user2's phone, user3, user5; never user4 (access)
    invalid = e2e.events(
        tmp_path / "ledger.sqlite", "SELECT request_id, detail FROM events WHERE kind='invalid'"
    )
    found = sorted((r["request_id"][0], json.loads(r["detail"])["reason"]) for r in invalid)
    assert [("b", "hashed_identity"), ("c", "not_an_erasure")] == found
    for r in invalid:
        assert "user4" not in r["detail"] and "0000000000" not in r["detail"]
    received = e2e.events(
        tmp_path / "ledger.sqlite",
        "SELECT DISTINCT received_at FROM events WHERE kind='planned' AND request_id LIKE 'a%'",
    )
    assert [r["received_at"] for r in received] == ["2026-11-02T15:00:00+00:00"]

    capsys.readouterr()
    assert 1 == cli.main(["validate", str(job)])
    out = capsys.readouterr().out
    # the accounting adds up: 6 entries (identities, or a request without ours)
    assert (
        "input rows 6 = rows with an identifier 4 + rows with no identifier 2 + blank rows 0" in out
    )
    assert "not_an_erasure" in out and "hashed_identity" in out


def test_a_file_of_another_kind_or_nested_too_deep_is_unusable(
    write_job: Callable[..., Path], tmp_path: Path
) -> None:
    job = job_mod.load(write_job(input={"path": "x.json"}))
    keyer = Keyer(b"k" * 32)
    path = tmp_path / "x.json"
    for text in (
        '{"a": 1}',
        "[1, 2]",
        "[]",
        "{" * 10,
        '[{"subject_request_type": 1' + "0" * 50 + "}]",
    ):
        path.write_text(text)
        with pytest.raises(InputUnusable):
            opendsr.read(job, keyer, path)
    path.write_text("[" * 40 + "]" * 40)
    with pytest.raises(InputUnusable, match="nested deeper"):
        opendsr.read(job, keyer, path)


def test_every_shape_of_identity_listing_is_read_in_order() -> None:
    """Subject identities then each extension's, each as a list or (mParticle v3) keyed by type."""
    request = {
        "subject_identities": [
            {"identity_type": " Email ", "identity_value": "a", "identity_format": "RAW"},
            {"identity_type": 7, "identity_value": "not a type"},
            "not an object",
        ],
        "extensions": {
            "x": {"identities": {"phone": {"value": "b", "encoding": "sha256"}, "y": 3}},
            "z": {"identities": [{"identity_type": "email", "identity_value": "c"}]},
            "w": "not an object",
        },
    }
    assert opendsr._identities(request) == [
        ("email", "a", "raw"),
        ("phone", "b", "sha256"),
        ("email", "c", "raw"),
    ]
    keyed = {"subject_identities": {"email": {"value": "d"}}, "extensions": []}
    assert opendsr._identities(keyed) == [("email", "d", "raw")]
    assert opendsr._identities({}) == []
