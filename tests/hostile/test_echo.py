"""A service that echoes the request: neither the token nor an identifier is stored.

A real HTTP server on a loopback socket answers every delete with the
request in ``error_text``, in the forms real services use: the JSON body as
sent, the form-encoded body, the local part, the phone in national format.
Then the ledger's files, the reports and everything printed are searched
for every form of the token and of each identifier.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest

from erasure import cli
from tests import e2e

TOKEN = "tOk/Secret+9a8b7c=="
EMAILS = ["ivan.petrov@example.com", "иван@пример.рф", "maria.s@example.org", "olga.k@example.net"]
PHONE = "+79161234567"

# How the server echoes each identifier's request: the body text as received,
# and the decoded document.
Echo = Callable[[str, dict[str, Any]], str]
STYLES: dict[str, Echo] = {
    "ivan.petrov@example.com": lambda body, doc: f"incorrect request: {body}",
    "иван@пример.рф": lambda body, doc: f"bad: {body}",  # as sent: \\u-escaped
    "maria.s@example.org": lambda body, doc: "form " + urlencode(doc),
    "olga.k@example.net": lambda body, doc: "user OLGA.K unknown; token " + quote_plus(TOKEN),
    PHONE: lambda body, doc: "no profile 8 (916) 123-45-67 (79161234567); also 8 916 765 43 21",
}


def _handler() -> type[BaseHTTPRequestHandler]:
    seen: dict[str, int] = {}

    class Echoing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            doc = json.loads(body)
            who = doc.get("email") or doc.get("phone") or ""
            if who.startswith("erasure-preflight-"):
                self._answer(200, {"error": 404, "error_text": f"not found: {body}"})
                return
            seen[who] = seen.get(who, 0) + 1
            text = STYLES[who](body, doc)
            if who == EMAILS[0] and seen[who] == 1:  # transient first: an attempt event
                self._answer(503, {"error": 1, "error_text": text})
            else:
                self._answer(400, {"error": 400, "error_text": text})

        def _answer(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Echoing


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _forms(value: str) -> set[str]:
    found = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
    }
    if "@" in value:
        found |= _forms(value.split("@")[0]) if len(value.split("@")[0]) >= 4 else set()
    return found


def _secrets() -> set[str]:
    forms = _forms(TOKEN)
    for email in EMAILS:
        forms |= _forms(email)
    forms |= _forms(PHONE) | {"79161234567", "9161234567", "8 (916) 123-45-67", "9167654321"}
    return {f.casefold() for f in forms}


def _leaks(text: str) -> list[str]:
    folded = text.casefold()
    return sorted(f for f in _secrets() if f in folded)


def test_an_echoing_service_leaves_no_token_or_identifier(
    write_job: Any,
    echo_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALTCRAFT_TOKEN", TOKEN)
    lines = ["ticket,email,phone"] + [f"T{i},{e}," for i, e in enumerate(EMAILS)]
    lines.append(f"T9,,{PHONE}")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = e2e.job(write_job, echo_url, run={"max_attempts": 3})

    assert e2e.run(job) == 1  # rejected: a person must look
    counts = e2e.outcome_counts(tmp_path / "ledger.sqlite")
    assert counts == {"rejected": 5}, counts
    texts = [r["error_text"] for r in e2e.events(tmp_path / "ledger.sqlite")]
    assert any(t and "<token>" in t for t in texts)  # the echo was there, and was scrubbed
    assert sum(1 for t in texts if t) >= 6  # five outcomes and the 503's attempt

    for out in ("report.csv", "report.html"):
        assert cli.main(["report", str(job), "--out", str(tmp_path / out)]) == 0
    printed = capsys.readouterr()

    stored = {
        p.name: p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.iterdir()
        if p.name.startswith(("ledger.sqlite", "report"))
    }
    assert stored.keys() >= {"ledger.sqlite", "report.csv", "report.html"}
    stored["stdout"] = printed.out
    stored["stderr"] = printed.err
    found = {name: _leaks(text) for name, text in stored.items() if _leaks(text)}
    assert found == {}
