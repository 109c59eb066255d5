"""The pure protocol layer: encode, decode, classify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, get_args, get_type_hints
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import altcraft
from erasure.altcraft import (
    Abort,
    Answer,
    DeleteRequest,
    Erased,
    NotFound,
    Rejected,
    Retry,
    RetryReason,
    Verdict,
    classify,
    classify_exception,
    decode,
    encode,
    parse_retry_after,
)
from erasure.job import Codes
from erasure.transport import NOT_SENT, Stage, TransportFailure, Unforeseen, UnusableURL

TOKEN = "tok-123"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# ---------------------------------------------------------------- encode


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (
            DeleteRequest(1, "email", "a@example.com"),
            {"token": TOKEN, "db_id": 1, "matching": "email", "email": "a@example.com"},
        ),
        (
            DeleteRequest(2, "email", "a@example.com", resource_id=24),
            {
                "token": TOKEN,
                "db_id": 2,
                "matching": "email",
                "email": "a@example.com",
                "resource_id": 24,
            },
        ),
        (
            DeleteRequest(1, "phone", "+79161234567", resource_id=7),
            {
                "token": TOKEN,
                "db_id": 1,
                "matching": "phone",
                "phone": "+79161234567",
                "resource_id": 7,
            },
        ),
        (
            # resource_id goes with email and phone only
            DeleteRequest(1, "profile_id", "5f33d33ece94481aa9382110", resource_id=7),
            {
                "token": TOKEN,
                "db_id": 1,
                "matching": "profile_id",
                "profile_id": "5f33d33ece94481aa9382110",
            },
        ),
        (
            DeleteRequest(1, "custom", "00123", field_name="CRM_ID", resource_id=7),
            {
                "token": TOKEN,
                "db_id": 1,
                "matching": "custom",
                "field_name": "CRM_ID",
                "field_value": "00123",
            },
        ),
        (
            DeleteRequest(1, "custom", "123", value_is_int=True, field_name="CRM_ID"),
            {
                "token": TOKEN,
                "db_id": 1,
                "matching": "custom",
                "field_name": "CRM_ID",
                "field_value": 123,
            },
        ),
        (
            DeleteRequest(1, "custom", "tag-1, tag-2", field_name="Теги"),
            {
                "token": TOKEN,
                "db_id": 1,
                "matching": "custom",
                "field_name": "Теги",
                "field_value": "tag-1, tag-2",
            },
        ),
    ],
)
def test_encode_json(req: DeleteRequest, expected: dict[str, Any]) -> None:
    body, ctype = encode(req, TOKEN, "json")
    assert ctype == "application/json"
    decoded = json.loads(body)
    assert decoded == expected
    assert list(decoded) == list(expected)  # the seed's field order


def test_encode_xml_fields_in_order_and_escaped() -> None:
    req = DeleteRequest(3, "email", "o'neil&<co>@example.com", resource_id=24)
    body, ctype = encode(req, "t<&>k", "xml")
    assert ctype == "application/xml"
    root = ElementTree.fromstring(body)
    assert root.tag == "xml"
    assert [(c.tag, c.text) for c in root] == [
        ("token", "t<&>k"),
        ("db_id", "3"),
        ("matching", "email"),
        ("email", "o'neil&<co>@example.com"),
        ("resource_id", "24"),
    ]


def test_encode_xml_custom_int() -> None:
    req = DeleteRequest(1, "custom", "42", value_is_int=True, field_name="CRM_ID")
    body, _ = encode(req, TOKEN, "xml")
    assert body == (
        b"<xml><token>tok-123</token><db_id>1</db_id><matching>custom</matching>"
        b"<field_name>CRM_ID</field_name><field_value>42</field_value></xml>"
    )


@pytest.mark.parametrize(
    "req",
    [
        DeleteRequest(1, "email_sub", "a@example.com"),
        DeleteRequest(1, "custom", "x"),  # no field_name
        DeleteRequest(1, "custom", "x1", value_is_int=True, field_name="F"),
    ],
)
def test_encode_refuses_what_cannot_be_sent(req: DeleteRequest) -> None:
    with pytest.raises(ValueError):
        encode(req, TOKEN, "json")


# XML 1.0 characters (no surrogates, no C0 controls but tab and newline; \r is referenced)
_xml_text = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")
        + "\ufffe\uffff",
    )
)


@given(value=_xml_text, token=_xml_text, matching=st.sampled_from(["email", "phone", "custom"]))
def test_encode_round_trips(value: str, token: str, matching: str) -> None:
    req = DeleteRequest(5, matching, value, field_name="F" if matching == "custom" else None)
    tag = "field_value" if matching == "custom" else matching
    assert json.loads(encode(req, token, "json")[0])[tag] == value
    root = ElementTree.fromstring(encode(req, token, "xml")[0])
    assert (root.findtext(tag) or "") == value
    assert (root.findtext("token") or "") == token


# ---------------------------------------------------------------- decode

SUCCESS_JSON = (
    b'{"data":{"profile_id":"5f33d33ece94481aa9382110"},"error":0,'
    b'"error_text":"Successful operation"}'
)
SUCCESS_XML = (
    b"<xml><data><profile_id>5f33d33ece94481aa9382110</profile_id></data>"
    b"<error>0</error><error_text>Successful operation</error_text></xml>"
)


OK, PID = "Successful operation", "5f33d33ece94481aa9382110"
PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@pytest.mark.parametrize(
    ("status", "ctype", "body", "error", "text", "profile_id"),
    [
        (200, "application/json", SUCCESS_JSON, 0, OK, PID),
        (200, "application/xml", SUCCESS_XML, 0, OK, PID),
        # the label lies, or is missing: the body decides
        (200, "text/html", SUCCESS_JSON, 0, OK, PID),
        (200, "application/json", SUCCESS_XML, 0, OK, PID),
        (200, None, b"\xef\xbb\xbf \n " + SUCCESS_JSON, 0, OK, PID),
        (200, None, PROLOG + SUCCESS_XML, 0, OK, PID),
        # errors, in any status
        (404, None, b'{"error":404,"error_text":"Not found"}', 404, "Not found", None),
        (400, None, b"<xml><error>400</error><error_text>Bad</error_text></xml>", 400, "Bad", None),
        (200, None, b'{"error":"403","error_text":"No access"}', 403, "No access", None),
        (200, None, b"<xml><error> 402 </error></xml>", 402, None, None),
        (200, None, b'{"error":0,"profile_id":"abc","data":null}', 0, None, "abc"),
        (200, None, b'{"error":0,"error_text":7,"data":{"profile_id":42}}', 0, "7", "42"),
        (500, None, b'{"error":-1}', -1, None, None),
    ],
)  # fmt: skip
def test_decode_altcraft_bodies(
    status: int,
    ctype: str | None,
    body: bytes,
    error: int,
    text: str | None,
    profile_id: str | None,
) -> None:
    assert decode(status, ctype, body, None) == Answer(status, error, text, profile_id, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"Service Unavailable",
        b'{"message":"not found"}',
        b'{"error":true}',  # a bool is no code
        b'{"error":1.5}',
        b'{"error":"4o4"}',
        b'{"error":null,"error_text":"x"}',
        b'[{"error":0}]',
        b'{"error":0',  # cut short
        b"<xml><error>zero</error></xml>",
        b"<xml><error/></xml>",
        b"<xml><err>0</err></xml>",
        b'<?xml version="1.0" encoding="no-such-codec"?><xml><error>0</error></xml>',
        b'<!DOCTYPE x [<!ENTITY a "0">]><xml><error>&a;</error></xml>',
        b'{"error":0,"pad":"' + b"x" * altcraft.MAX_BODY + b'"}',
        b'{"error":' + b"9" * 5000 + b"}",
        b"\xff\xfe{\x00",
    ],
)
def test_decode_no_altcraft_body(body: bytes) -> None:
    assert decode(502, "application/json", body, None) == Answer(502, None, None, None, None)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
        b"<html><head><title>502 Bad Gateway</title></head></html>",
        b"\xef\xbb\xbf\n  <!doctype HTML>\n<html lang=en>",
        b'<?xml version="1.0"?>\n<!-- portal -->\n<html xmlns="http://www.w3.org/1999/xhtml">',
        b"<head><title>Login</title></head>",
    ],
)
def test_decode_an_html_page(body: bytes) -> None:
    assert decode(200, "text/html", body, None) == Answer(200, None, None, None, None, html=True)


@pytest.mark.parametrize(
    "body", [b"<xml><error>0</error></xml>", b"<xml><note>html</note></xml>", b"", b"{}"]
)
def test_decode_xml_is_no_html_page(body: bytes) -> None:
    assert not decode(200, "text/html", body, None).html


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("  5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("99999999999999999999", altcraft.MAX_RETRY_AFTER_S),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Fri, 02 Jan 2026 03:05:35 GMT", 90.0),
        ("Friday, 02-Jan-26 03:05:35 GMT", 90.0),  # RFC 850, obsolete but allowed
        ("Fri Jan  2 03:05:35 2026", 90.0),  # asctime: no zone, means UTC
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        ("1e3", None),
        ("Fri, 32 Jan 2026 03:05:35 GMT", None),
    ],
)
def test_retry_after(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
    assert decode(429, None, b"", header, NOW).retry_after_s == seconds


def test_retry_after_naive_now_means_utc() -> None:
    assert parse_retry_after("Fri, 02 Jan 2026 03:05:35 GMT", NOW.replace(tzinfo=None)) == 90.0


def test_retry_after_absent() -> None:
    assert decode(429, None, b"", None).retry_after_s is None


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    )


_fields = st.fixed_dictionaries(
    {},
    optional={
        "error": _json_values(),
        "error_text": _json_values(),
        "data": _json_values() | st.fixed_dictionaries({"profile_id": _json_values()}),
        "profile_id": _json_values(),
    },
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"{" + b),
    st.binary(max_size=300).map(lambda b: b"<" + b),
    st.text(max_size=300).map(lambda t: ("<" + t).encode()),
    _fields.map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.sampled_from(["error", "error_text", "data", "x"]), st.text(max_size=5)).map(
        lambda d: ("<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in d.items()) + "</xml>").encode()
    ),
)


@given(
    status=st.integers(100, 599),
    ctype=st.none() | st.text(max_size=30),
    body=_bodies,
    retry_after=st.none() | st.text(max_size=40),
)
def test_decode_never_raises(
    status: int, ctype: str | None, body: bytes, retry_after: str | None
) -> None:
    answer = decode(status, ctype, body, retry_after, NOW)
    assert answer.http_status == status
    assert answer.error is None or isinstance(answer.error, int)
    if answer.error is None:
        assert answer.error_text is None and answer.profile_id is None
    assert answer.retry_after_s is None or 0 <= answer.retry_after_s <= altcraft.MAX_RETRY_AFTER_S
    # whatever came back, the classification is total
    assert isinstance(classify(answer, Codes()), Erased | NotFound | Rejected | Retry | Abort)


# ---------------------------------------------------------------- classify


def _answer(
    status: int, error: int | None, text: str | None = "t", after: float | None = None
) -> Answer:
    return Answer(status, error, text if error is not None else None, None, after)


def _html(status: int, after: float | None = None) -> Answer:
    return Answer(status, None, None, None, after, html=True)


CUSTOM = Codes(not_found=frozenset({1404}), token=frozenset({7}), unavailable=frozenset({8, 9}))

# (answer, codes, verdict, rule)
TABLE: list[tuple[Answer, Codes, Verdict, str]] = [
    # an Altcraft body
    (Answer(200, 0, "ok", "p1", None), Codes(), Erased("p1"), "2xx and error 0: erased"),
    (Answer(204, 0, None, None, None), Codes(), Erased(None), "2xx and error 0, no profile id"),
    (_answer(200, 404), Codes(), NotFound(404, "t"), "not_found code"),
    (_answer(404, 404), Codes(), NotFound(404, "t"), "not_found code beats HTTP 404"),
    (_answer(500, 404), Codes(), NotFound(404, "t"), "not_found code beats HTTP 5xx"),
    (_answer(200, 401), Codes(), Abort("token", 401, 200, "t"), "token code"),
    (_answer(403, 403), Codes(), Abort("token", 403, 403, "t"), "token code with HTTP 403"),
    (_answer(429, 401), Codes(), Abort("token", 401, 429, "t"), "token code beats HTTP 429"),
    (_answer(200, 402), Codes(), Abort("unavailable", 402, 200, "t"), "unavailable code"),
    (_answer(402, 402), Codes(), Abort("unavailable", 402, 402, "t"), "unavailable code, HTTP 402"),
    (_answer(200, 400), Codes(), Rejected(400, "t", 200), "other code with 2xx: rejected"),
    (_answer(400, 400), Codes(), Rejected(400, "t", 400), "other code with 4xx: rejected"),
    (_answer(200, 440), Codes(), Rejected(440, "t", 200), "undocumented code: rejected"),
    (_answer(404, 440), Codes(), Rejected(440, "t", 404), "other code with HTTP 404: rejected"),
    (_answer(302, 440), Codes(), Rejected(440, "t", 302), "other code with 3xx: rejected"),
    (_answer(429, 440, after=3.0), Codes(), Retry("http_429", 429, 3.0, False), "other code, 429"),
    (_answer(503, 440, after=2.0), Codes(), Retry("http_5xx", 503, 2.0, True), "other code, 5xx"),
    (_answer(500, 0), Codes(), Retry("http_5xx", 500, None, True), "error 0 with 5xx: by status"),
    (_answer(429, 0), Codes(), Retry("http_429", 429, None, False), "error 0 with 429: by status"),
    (_answer(404, 0), Codes(), Abort("wrong_url", 0, 404, "t"), "error 0 with 404: by status"),
    (_answer(301, 0), Codes(), Abort("wrong_url", 0, 301, "t"), "error 0 with 3xx: by status"),
    (_answer(401, 0), Codes(), Abort("token", 0, 401, "t"), "error 0 with 401: by status"),
    (_answer(400, 0), Codes(), Rejected(0, "t", 400), "error 0 with 400: by status"),
    # configured codes
    (_answer(200, 1404), CUSTOM, NotFound(1404, "t"), "configured not_found"),
    (_answer(200, 404), CUSTOM, Rejected(404, "t", 200), "404 no longer not_found"),
    (_answer(200, 7), CUSTOM, Abort("token", 7, 200, "t"), "configured token"),
    (_answer(500, 9), CUSTOM, Abort("unavailable", 9, 500, "t"), "configured unavailable"),
    (_answer(200, 401), CUSTOM, Rejected(401, "t", 200), "401 no longer token"),
    # no Altcraft body: the HTTP status alone
    (_answer(200, None), Codes(), Retry("no_body", 200, None, True), "2xx without body"),
    (_answer(204, None), Codes(), Retry("no_body", 204, None, True), "204 without body"),
    (_answer(301, None), Codes(), Abort("wrong_url", None, 301, None), "redirect"),
    (_answer(302, None), Codes(), Abort("wrong_url", None, 302, None), "redirect"),
    (_answer(307, None), Codes(), Abort("wrong_url", None, 307, None), "redirect"),
    (_answer(308, None), Codes(), Abort("wrong_url", None, 308, None), "redirect (http to https)"),
    (_answer(401, None), Codes(), Abort("token", None, 401, None), "gateway refuses token"),
    (_answer(403, None), Codes(), Abort("token", None, 403, None), "gateway forbids"),
    (_answer(404, None), Codes(), Abort("wrong_url", None, 404, None), "proxy's HTML 404"),
    (_answer(405, None), Codes(), Abort("wrong_url", None, 405, None), "method not allowed"),
    (_answer(408, None), Codes(), Retry("http_408", 408, None, False), "request timeout"),
    (_answer(429, None, after=7.0), Codes(), Retry("http_429", 429, 7.0, False), "429 bare"),
    (_answer(500, None), Codes(), Retry("http_5xx", 500, None, True), "500 bare"),
    (_answer(502, None), Codes(), Retry("http_5xx", 502, None, True), "bad gateway"),
    (_answer(503, None, after=1.0), Codes(), Retry("http_5xx", 503, 1.0, True), "unavailable"),
    (_answer(504, None), Codes(), Retry("http_5xx", 504, None, True), "gateway timeout"),
    (_answer(400, None), Codes(), Rejected(None, None, 400), "400 bare"),
    (_answer(402, None), Codes(), Rejected(None, None, 402), "402 bare (no code: not unavailable)"),
    (_answer(413, None), Codes(), Rejected(None, None, 413), "too large"),
    (_answer(418, None), Codes(), Rejected(None, None, 418), "other 4xx"),
    (_answer(101, None), Codes(), Rejected(None, None, 101), "1xx"),
    (_answer(501, None), Codes(), Abort("wrong_url", None, 501, None), "not implemented"),
    # an HTML page: not the API when 2xx/3xx; a proxy's error page when 5xx
    (_html(200), Codes(), Abort("wrong_url", None, 200, "an HTML page"), "HTML page, 200"),
    (_html(204), Codes(), Abort("wrong_url", None, 204, "an HTML page"), "HTML page, 204"),
    (_html(302), Codes(), Abort("wrong_url", None, 302, "an HTML page"), "HTML login redirect"),
    (_html(404), Codes(), Abort("wrong_url", None, 404, None), "HTML 404"),
    (_html(501), Codes(), Abort("wrong_url", None, 501, None), "HTML 501"),
    (_html(500), Codes(), Retry("http_5xx", 500, None, True), "HTML 500 stays transient"),
    (_html(502), Codes(), Retry("http_5xx", 502, None, True), "HTML 502 stays transient"),
    (_html(503, 5.0), Codes(), Retry("http_5xx", 503, 5.0, True), "HTML 503 stays transient"),
    (_html(504), Codes(), Retry("http_5xx", 504, None, True), "HTML 504 stays transient"),
    (_html(429, 9.0), Codes(), Retry("http_429", 429, 9.0, False), "HTML 429, Retry-After"),
    (_html(401), Codes(), Abort("token", None, 401, None), "HTML 401"),
    (_html(400), Codes(), Rejected(None, None, 400), "HTML 400"),
]


@pytest.mark.parametrize(
    ("answer", "codes", "verdict"), [t[:3] for t in TABLE], ids=[t[3] for t in TABLE]
)
def test_classify(answer: Answer, codes: Codes, verdict: Verdict) -> None:
    assert classify(answer, codes) == verdict


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, SUCCESS_JSON, Erased("5f33d33ece94481aa9382110")),
        (200, SUCCESS_XML, Erased("5f33d33ece94481aa9382110")),
        (404, b'{"error":404,"error_text":"Not found"}', NotFound(404, "Not found")),
        (200, b"<xml><error>403</error></xml>", Abort("token", 403, 200, None)),
        (404, b"<html><body>Not Found</body></html>", Abort("wrong_url", None, 404, None)),
        (200, b"", Retry("no_body", 200, None, True)),
    ],
)  # fmt: skip
def test_decode_then_classify(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(decode(status, None, body, None), Codes()) == verdict


# Each stage, timed out or not: the retry reason and whether it may have reached.
EXCEPTIONS: list[tuple[TransportFailure, str, bool]] = [
    (TransportFailure("w", Stage.POOL, timed_out=True), "pool_timeout", False),
    (TransportFailure("w", Stage.CONNECT), "connect", False),
    (TransportFailure("w", Stage.CONNECT, timed_out=True), "connect_timeout", False),
    (TransportFailure("w", Stage.HUNG_UP), "connect", False),
    (TransportFailure("w", Stage.SEND), "disconnected", True),
    (TransportFailure("w", Stage.SEND, timed_out=True), "write_timeout", True),
    (TransportFailure("w", Stage.ANSWER), "disconnected", True),
    (TransportFailure("w", Stage.ANSWER, timed_out=True), "read_timeout", True),
    (TransportFailure("w", Stage.UNKNOWN), "network", True),
    (TransportFailure("w", Stage.UNKNOWN, timed_out=True), "read_timeout", True),
]


@pytest.mark.parametrize(("exc", "reason", "reached"), EXCEPTIONS)
def test_classify_exception(exc: TransportFailure, reason: str, reached: bool) -> None:
    expected = Retry(reason, None, None, reached, detail="w", stage=exc.stage)  # type: ignore[arg-type]
    assert classify_exception(exc) == expected
    assert reached == exc.maybe_reached


def test_every_stage_has_a_row() -> None:
    assert set(Stage) == {exc.stage for exc, _, _ in EXCEPTIONS}
    assert NOT_SENT == {exc.stage for exc, _, reached in EXCEPTIONS if not reached}


def test_classify_exception_wrong_url() -> None:
    verdict = classify_exception(UnusableURL())
    assert verdict == Abort("wrong_url", None, None, "the URL cannot be used")


UNFORESEEN: list[Exception] = [
    ValueError("a bug"),
    KeyError("x"),
    RuntimeError("unable to perform operation on <TCPTransport closed=True>"),
    # not erasure's own: an exception of a lower layer that escaped the client is a bug
    httpx.ConnectError("refused"),
    ConnectionRefusedError(111, "refused"),
]


@pytest.mark.parametrize("exc", UNFORESEEN)
def test_an_unforeseen_exception_is_transient_in_doubt_and_named(exc: Exception) -> None:
    name = type(exc).__name__
    assert classify_exception(exc) == Retry(
        "unforeseen",
        None,
        None,
        True,
        unforeseen=name,
        detail=f"unforeseen {name} in the HTTP client",
        stage=Stage.UNKNOWN,
    )
    wrapped = Unforeseen(name)
    assert classify_exception(wrapped) == classify_exception(exc)


def test_the_tables_reach_every_verdict_abort_kind_and_retry_reason() -> None:
    """The closed sets as declared are exactly what classify's tables produce.

    A verdict class, abort kind or retry reason added without a row that
    reaches it (or a row that classify answers outside the sets) fails here.
    ``unreachable`` is the runner's (a ``connect`` retry at the preflight):
    classify never returns it.
    """
    produced = [classify(answer, codes) for answer, codes, _, _ in TABLE]
    produced += [classify_exception(exc) for exc, _, _ in EXCEPTIONS]
    produced += [classify_exception(exc) for exc in UNFORESEEN]
    produced.append(classify_exception(UnusableURL()))
    assert set(get_args(Verdict)) == {type(v) for v in produced}
    kinds = set(get_args(get_type_hints(Abort)["kind"]))
    assert kinds - {"unreachable"} == {v.kind for v in produced if isinstance(v, Abort)}
    reasons = set(get_args(RetryReason))
    assert reasons == {v.reason for v in produced if isinstance(v, Retry)}
