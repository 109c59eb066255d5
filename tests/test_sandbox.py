"""The sandbox's protocol over a real loopback socket: matching, formats, tokens, codes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from erasure.errors import FileMissing, InputUnusable
from erasure.sandbox import protocol
from erasure.sandbox.store import Store, generate, load_csv
from tests.sandbox_fixture import (  # noqa: F401  (fixtures, also imported by conftest)
    Sandbox,
    _sandbox,
    _sandbox_factory,
)

Factory = Callable[..., Sandbox]

ROWS: list[dict[str, Any]] = [
    {"db_id": 1, "email": "anna@example.com", "phone": "+79161234567", "resources": "24;25"},
    {"db_id": 1, "email": "boris@example.com", "phone": "+79161234568", "resources": "25"},
    {"db_id": 1, "email": "vera@example.com", "CRM_ID": "00123", "tags": "vip, b2b, newsletter"},
    {"db_id": 1, "email": "gleb@example.com", "CRM_ID": "777", "tags": "b2b"},
    {"db_id": 2, "email": "anna@example.com", "phone": "+79161234567"},
]


@pytest.fixture(name="rows_sandbox")
def _rows_sandbox(sandbox_factory: Factory) -> Sandbox:
    return sandbox_factory(profiles=ROWS)


def erased_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] == 0
    assert body["error_text"] == "Successful operation"
    profile_id: str = body["data"]["profile_id"]
    return profile_id


def assert_error(response: httpx.Response, code: int) -> None:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == code


# Matching modes


def test_email_is_the_default_matching_and_a_second_delete_is_not_found(sandbox: Sandbox) -> None:
    first = sandbox.profiles[0]
    assert erased_id(sandbox.delete(email="user0@example.com")) == first.profile_id
    again = sandbox.delete(email="user0@example.com")
    assert_error(again, 404)
    assert again.json()["error_text"] == "Profile not found"


def test_email_compares_trimmed_and_lower_cased(sandbox: Sandbox) -> None:
    response = sandbox.delete(matching="email", email="  User3@Example.COM ")
    assert erased_id(response) == sandbox.profiles[3].profile_id


def test_phone_and_profile_id_matching(sandbox: Sandbox) -> None:
    assert erased_id(sandbox.delete(matching="phone", phone="+79000000005")) == (
        sandbox.profiles[5].profile_id
    )
    target = sandbox.profiles[7].profile_id
    assert erased_id(sandbox.delete(matching="profile_id", profile_id=target)) == target
    assert_error(sandbox.delete(matching="profile_id", profile_id=target), 404)
    assert sandbox.profiles[7].deleted


def test_custom_field_matches_its_text_and_integers(rows_sandbox: Sandbox) -> None:
    vera, gleb = rows_sandbox.profiles[2], rows_sandbox.profiles[3]
    assert_error(rows_sandbox.delete(matching="custom", field_name="CRM_ID", field_value=123), 404)
    response = rows_sandbox.delete(matching="custom", field_name="CRM_ID", field_value="00123")
    assert erased_id(response) == vera.profile_id
    response = rows_sandbox.delete(matching="custom", field_name="CRM_ID", field_value=777)
    assert erased_id(response) == gleb.profile_id


def test_tags_match_when_the_profile_has_all_of_them_in_any_order(
    rows_sandbox: Sandbox,
) -> None:
    vera = rows_sandbox.profiles[2]

    def delete(tags: str) -> httpx.Response:
        return rows_sandbox.delete(matching="custom", field_name="tags", field_value=tags)

    assert_error(delete("vip, other"), 404)
    assert erased_id(delete("newsletter,  vip")) == vera.profile_id
    # "b2b" alone: vera is gone, gleb's single tag still matches.
    assert erased_id(delete("b2b")) == rows_sandbox.profiles[3].profile_id
    assert_error(delete("b2b"), 404)


def test_resource_id_narrows_email_and_phone_matching(rows_sandbox: Sandbox) -> None:
    anna, boris = rows_sandbox.profiles[0], rows_sandbox.profiles[1]
    assert_error(rows_sandbox.delete(email="boris@example.com", resource_id=24), 404)
    assert not boris.deleted
    response = rows_sandbox.delete(matching="phone", phone="+79161234567", resource_id=24)
    assert erased_id(response) == anna.profile_id
    assert erased_id(rows_sandbox.delete(email="boris@example.com", resource_id=25)) == (
        boris.profile_id
    )


def test_databases_are_separate(rows_sandbox: Sandbox) -> None:
    in_db2 = rows_sandbox.profiles[4]
    assert erased_id(rows_sandbox.delete(db_id=2, email="anna@example.com")) == in_db2.profile_id
    assert not rows_sandbox.profiles[0].deleted
    response = rows_sandbox.delete(db_id=3, email="anna@example.com")
    assert_error(response, 400)
    assert "database 3 does not exist" in response.json()["error_text"]


# Formats


def xml_delete(sandbox: Sandbox, body: str, **headers: str) -> httpx.Response:
    return sandbox.post(body.encode(), **{"content-type": "application/xml", **headers})


def test_xml_in_xml_out(sandbox: Sandbox) -> None:
    body = (
        f"<xml><token>{sandbox.token}</token><db_id>1</db_id>"
        "<matching>phone</matching><phone>+79000000002</phone></xml>"
    )
    response = xml_delete(sandbox, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "xml"
    assert root.findtext("data/profile_id") == sandbox.profiles[2].profile_id
    assert root.findtext("error") == "0"
    assert root.findtext("error_text") == "Successful operation"
    again = ET.fromstring(xml_delete(sandbox, body).content)
    assert again.findtext("error") == "404"


@pytest.mark.parametrize(
    "body",
    [
        "<root><db_id>1</db_id></root>",
        "<xml><db_id>1</db_id><email>user1@example.com</email>",
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "user1@example.com">]>'
        "<xml><db_id>1</db_id><email>&a;</email></xml>",
        "<xml><db_id>1</db_id><email>&undefined;</email></xml>",
        "<xml><db_id>one</db_id><email>user1@example.com</email></xml>",
        "<xml><db_id>1</db_id><email><b>user1@example.com</b></email></xml>",
    ],
    ids=["root", "unclosed", "doctype", "entity", "db_id", "nested"],
)
def test_bad_xml_is_an_incorrect_request(sandbox: Sandbox, body: str) -> None:
    response = xml_delete(sandbox, body, authorization=f"Bearer {sandbox.token}")
    assert response.status_code == 400
    assert ET.fromstring(response.content).findtext("error") == "400"
    assert sandbox.stats()["erased_profiles"] == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            '<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <db_id>1</db_id>\n'
            "  <email>a@example.com</email>\n</xml>\n",
            {"db_id": "1", "email": "a@example.com"},
        ),
        ("<xml><field_value>a &amp; b</field_value></xml>", {"field_value": "a & b"}),
        ("<xml><field_value><![CDATA[x<y]]></field_value></xml>", {"field_value": "x<y"}),
        ('<xml><email/><phone kind="m">+7</phone></xml>', {"email": "", "phone": "+7"}),
        ("<xml><field_value>Иванов, vip</field_value></xml>", {"field_value": "Иванов, vip"}),
    ],
)
def test_xml_fields_are_read_as_a_parser_reads_them(body: str, fields: dict[str, str]) -> None:
    assert protocol.decode(body.encode(), "xml") == fields


# Tokens and codes


def test_bearer_token_and_body_token(sandbox: Sandbox) -> None:
    body = {"db_id": 1, "email": "user1@example.com"}
    headers = {"authorization": f"Bearer {sandbox.token}"}
    response = sandbox.client.post(sandbox.delete_url, json=body, headers=headers)
    assert erased_id(response) == sandbox.profiles[1].profile_id
    assert erased_id(sandbox.delete(email="user2@example.com")) == sandbox.profiles[2].profile_id


@pytest.mark.parametrize(
    ("token", "header", "code"),
    [
        (None, None, 401),
        ("wrong", None, 401),
        (None, "Bearer wrong", 401),
        ("sandbox-readonly-token", None, 403),
        (None, "Bearer sandbox-readonly-token", 403),
    ],
)
def test_refused_tokens_delete_nothing(
    sandbox: Sandbox, token: str | None, header: str | None, code: int
) -> None:
    body: dict[str, object] = {"db_id": 1, "email": "user1@example.com"}
    if token is not None:
        body["token"] = token
    headers = {"authorization": header} if header else {}
    response = sandbox.client.post(sandbox.delete_url, json=body, headers=headers)
    assert_error(response, code)
    assert not sandbox.profiles[1].deleted


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "user1@example.com"},
        {"db_id": "1", "email": "user1@example.com"},
        {"db_id": True, "email": "user1@example.com"},
        {"db_id": 1, "matching": "email_sub", "email": "user1@example.com"},
        {"db_id": 1},
        {"db_id": 1, "email": "  "},
        {"db_id": 1, "matching": "phone", "email": "user1@example.com"},
        {"db_id": 1, "matching": "custom", "field_value": "1"},
        {"db_id": 1, "matching": "custom", "field_name": "CRM_ID"},
        {"db_id": 1, "matching": "custom", "field_name": "CRM_ID", "field_value": 1.5},
        {"db_id": 1, "matching": "profile_id", "profile_id": "x", "resource_id": 1},
        {"db_id": 1, "matching": "custom", "field_name": "a", "field_value": 1, "resource_id": 1},
        {"db_id": 1, "email": "user1@example.com", "resource_id": "24"},
    ],
)
def test_incorrect_requests_are_400(sandbox: Sandbox, fields: dict[str, object]) -> None:
    response = sandbox.client.post(sandbox.delete_url, json={"token": sandbox.token, **fields})
    assert_error(response, 400)
    assert response.json()["error_text"].startswith("Incorrect request")
    assert sandbox.stats()["erased_profiles"] == 0


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"db_id": 1}', "text/plain"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_unusable_bodies_are_400(sandbox: Sandbox, content: bytes, content_type: str) -> None:
    headers = {"content-type": content_type, "authorization": f"Bearer {sandbox.token}"}
    response = sandbox.post(content, **headers)
    assert_error(response, 400)


def test_a_body_over_10_mb_is_400(sandbox: Sandbox) -> None:
    content = b'{"db_id": 1, "email": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    headers = {"content-type": "application/json", "authorization": f"Bearer {sandbox.token}"}
    response = sandbox.post(content, **headers)
    assert_error(response, 400)
    assert "larger than 10 MB" in response.json()["error_text"]


def test_tariff_limit_answers_402_after_n_erased(sandbox: Sandbox) -> None:
    sandbox.configure(tariff_limit_after=1)
    erased_id(sandbox.delete(email="user1@example.com"))
    assert_error(sandbox.delete(email="user2@example.com"), 402)
    assert not sandbox.profiles[2].deleted
    sandbox.configure(tariff_limit_after=None)
    erased_id(sandbox.delete(email="user2@example.com"))


def test_error_status_200_carries_errors_in_the_body(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory(error_status="200")
    response = sandbox.delete(email="nobody@example.com")
    assert response.status_code == 200
    assert response.json() == {"error": 404, "error_text": "Profile not found"}
    response = sandbox.client.post(sandbox.delete_url, json={"db_id": 1})
    assert (response.status_code, response.json()["error"]) == (200, 401)


def test_not_found_code_and_echoed_identifier_are_settings(sandbox: Sandbox) -> None:
    sandbox.configure(not_found_code=440, echo_identifier=True)
    response = sandbox.delete(email="Nobody@Example.com")
    assert response.status_code == 440
    assert response.json() == {"error": 440, "error_text": "Profile not found: Nobody@Example.com"}
    assert sandbox.stats()["answers"] == {"not_found": 1}


def test_unknown_paths_and_methods_answer_like_a_proxy(sandbox: Sandbox) -> None:
    wrong = sandbox.client.post(sandbox.url + "/api/v1/profiles/delete", json={})
    assert wrong.status_code == 404
    assert wrong.headers["content-type"] == "text/html"
    assert "error" not in wrong.text
    get = sandbox.client.get(sandbox.delete_url)
    assert (get.status_code, get.headers["allow"]) == (405, "POST")
    assert sandbox.stats()["requests"] == 0


# Counters and control


def test_stats_count_every_delete_per_profile(sandbox: Sandbox) -> None:
    p0, p1 = sandbox.profiles[0], sandbox.profiles[1]
    sandbox.delete(email="user0@example.com")
    sandbox.delete(email="user0@example.com")
    sandbox.delete(matching="profile_id", profile_id=p0.profile_id)
    sandbox.delete(matching="phone", phone="+79000000001")
    sandbox.delete(email="nobody@example.com")
    sandbox.delete(email="user1@example.com", token="wrong")
    stats = sandbox.stats()
    assert stats["requests"] == 6
    assert stats["answers"] == {"erased": 2, "not_found": 3, "401": 1}
    assert stats["deletes_per_profile"] == {p0.profile_id: 3, p1.profile_id: 1}
    assert (stats["erased_profiles"], stats["profiles_left"]) == (2, 98)
    assert stats["rate"]["peak_per_s"] >= 1
    assert "request_times" not in stats
    assert "deletes_per_profile" not in sandbox.stats(per_profile=False)


def test_record_times_keeps_each_arrival(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory(record_times=True)
    assert sandbox.stats()["request_times"] == []
    for i in range(3):
        sandbox.delete(email=f"user{i}@example.com")
    times = sandbox.stats()["request_times"]
    assert len(times) == 3
    assert times == sorted(times)


def test_config_reads_changes_and_refuses_unknown_keys(sandbox: Sandbox) -> None:
    assert sandbox.configure()["fail_429"] == 0
    changed = sandbox.configure(fail_429=0.25, fail_5xx_codes=[502], seed=3)
    assert (changed["fail_429"], changed["fail_5xx_codes"]) == (0.25, [502])
    for bad in ({"fail_492": 1}, {"drop": 2}, {"latency_ms": -1}, {"error_status": "500"}):
        with pytest.raises(ValueError, match="setting"):
            sandbox.configure(**bad)
    with pytest.raises(ValueError, match="seed"):
        sandbox.configure(seed="x")


# The store


def test_generated_profiles_follow_the_contract() -> None:
    store = Store(generate(3, seed=5))
    assert [(p.db_id, p.email, p.phone) for p in store.profiles] == [
        (1, "user0@example.com", "+79000000000"),
        (1, "user1@example.com", "+79000000001"),
        (1, "user2@example.com", "+79000000002"),
    ]
    ids = [p.profile_id for p in store.profiles]
    assert all(len(i) == 24 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert ids == [p.profile_id for p in generate(3, seed=5)]
    assert ids != [p.profile_id for p in generate(3, seed=6)]


def test_profiles_csv_loads_fixed_columns_and_custom_fields(tmp_path: Path) -> None:
    path = tmp_path / "profiles.csv"
    path.write_text(
        "DB_ID,profile_id,Email,phone,resources,CRM_ID,tags\n"
        '1,5f33d33ece94481aa9382110,Anna@Example.com,+79161234567,24;25,00123,"vip, b2b"\n'
        "2,,boris@example.com,,,,\n",
        encoding="utf-8",
    )
    anna, boris = load_csv(path)
    assert (anna.profile_id, anna.email, anna.resources) == (
        "5f33d33ece94481aa9382110",
        "anna@example.com",
        frozenset({24, 25}),
    )
    assert anna.fields == {"CRM_ID": "00123", "tags": "vip, b2b"}
    assert (boris.db_id, len(boris.profile_id), boris.fields) == (2, 24, {})
    store = Store([anna, boris])
    assert store.find(1, "custom", "b2b", field_name="tags") == [anna]


def test_bad_profiles_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileMissing):
        list(load_csv(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("db_id,email\nx,a@example.com\n", encoding="utf-8")
    with pytest.raises(InputUnusable, match="row 2, column db_id"):
        list(load_csv(bad))
    bad.write_text("email\na@example.com\n", encoding="utf-8")
    with pytest.raises(InputUnusable, match="no db_id column"):
        list(load_csv(bad))
