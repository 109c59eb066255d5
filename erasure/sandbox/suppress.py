"""The sandbox's suppression lists: Altcraft's ``suppresses/*`` calls, with faults.

Routes (JSON bodies only; the token in the body or as ``Authorization: Bearer``)::

    POST /api/v1.1/suppresses/emails_add   {id, emails: [...]}
         -> {error, error_text, total_count, total_duplicated, total_imported, total_updated}
    POST /api/v1.1/suppresses/phones_add   {id, values: [...]}
         -> {error, error_text, total_count, total_duplicated, total_imported, total_invalid}
    POST /api/v1.1/suppresses/email_check  {id, email}
         -> {error, error_text, matched, email_matched, domain_matched}
    POST /api/v1.1/suppresses/phone_check  {id, value} -> {error, error_text, matched}
    POST /api/v1.1/suppresses/list         -> {error, error_text, data: [{id, name}]}
    POST /api/v1.1/suppresses/{email,phone}s_remove, email_remove, phone_remove
         served (and counted) so that a test can prove the tool never calls them
    GET  /__sandbox/suppress               the lists' contents and the calls per path
    POST /__sandbox/suppress               {"lists": [7, 8], "fail_429": 0.5, "fail_5xx": 0,
                                            "hang": 0, "hang_s": 30, "deny_token": false,
                                            "seed": 1}

A new sandbox has lists 7 and 8 (the contract's example job's), empty.
The shapes of ``emails_add``, ``phones_add`` and ``email_check`` are the
documented ones (guides.altcraft.com, developer guide, "Suppression list
actions": pages 2195627, 76809091 and 2195633). ``phone_check``'s body
(``value``) follows ``phone_add``'s (page 76809087), and ``list``'s path
and answer are assumptions: the pages found do not show them. Unknown list
ids answer error 400. A list is a set: a value added again counts as
``total_duplicated``; ``adds`` counts how often each value was sent.
Faults, drawn per call from a seeded die: 429 with ``Retry-After: 0``, 500
with an Altcraft body, and a hang of ``hang_s`` seconds then a dropped
connection; ``deny_token`` answers 403 to the delete token (a token
without the suppression right).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from erasure.sandbox.asgi import Receive, Send, drop, read_body, respond

PREFIX = "/api/v1.1/suppresses/"
CONTROL_PATH = "/__sandbox/suppress"
JSON = b"application/json"
REMOVES = frozenset({"emails_remove", "phones_remove", "email_remove", "phone_remove"})
DEFAULT_LISTS = (7, 8)
CALLS = frozenset({"emails_add", "phones_add", "email_check", "phone_check", "list"} | REMOVES)


@dataclass
class SuppressionList:
    name: str
    emails: dict[str, int] = field(default_factory=dict)  # value -> times added
    phones: dict[str, int] = field(default_factory=dict)


@dataclass
class Suppressions:
    """The sandbox's suppression lists and their faults (mutable: a fake service)."""

    token: str
    readonly_token: str
    lists: dict[int, SuppressionList] = field(default_factory=dict)
    fail_429: float = 0.0  # probability per call
    fail_5xx: float = 0.0
    hang: float = 0.0
    hang_s: float = 30.0  # seconds a hang lasts (or until the server stops)
    deny_token: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        # the contract's example job names lists 7 and 8: a new sandbox has them
        for i in DEFAULT_LISTS:
            self.lists.setdefault(i, SuppressionList(f"list {i}"))

    def state(self) -> dict[str, Any]:
        return {
            "lists": {
                str(i): {"name": s.name, "emails": s.emails, "phones": s.phones}
                for i, s in self.lists.items()
            },
            "calls": dict(self.calls),
            "fired": dict(self.fired),
        }

    def configure(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "lists":
                for i in value:
                    self.lists.setdefault(int(i), SuppressionList(f"list {int(i)}"))
            elif key in ("fail_429", "fail_5xx", "hang", "hang_s"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{key} must be a number >= 0")
                setattr(self, key, float(value))
            elif key == "deny_token":
                self.deny_token = bool(value)
            elif key == "seed":
                self.rng = random.Random(int(value))
            else:
                raise ValueError(f"unknown suppression setting {key!r}")

    # ------------------------------------------------------------ serving

    async def control(self, method: str, receive: Receive, send: Send) -> None:
        if method == "POST":
            try:
                changes = json.loads(await read_body(receive) or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                self.configure(changes)
            except (ValueError, TypeError) as exc:
                await respond(send, 400, JSON, json.dumps({"error": str(exc)}).encode())
                return
        await respond(send, 200, JSON, json.dumps(self.state()).encode())

    async def serve(
        self,
        name: str,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
        stopping: asyncio.Event,
    ) -> None:
        """One ``suppresses/NAME`` call, faults first."""
        self.calls[name] += 1
        body = await read_body(receive) or b""
        if self._hit(self.hang):
            self.fired["hang"] += 1
            try:
                await asyncio.wait_for(stopping.wait(), self.hang_s)
            except TimeoutError:
                pass
            await drop(receive, send)
            return
        if self._hit(self.fail_429):
            self.fired["fail_429"] += 1
            await respond(send, 429, b"text/plain", b"Too Many Requests", [(b"retry-after", b"0")])
            return
        if self._hit(self.fail_5xx):
            self.fired["fail_5xx"] += 1
            await respond(send, 500, JSON, _error(500, "Internal server error"))
            return
        status, answer = self._answer(name, headers, body)
        await respond(send, status, JSON, answer)

    def _hit(self, probability: float) -> bool:
        return probability > 0 and (probability >= 1 or self.rng.random() < probability)

    def _answer(
        self, name: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes]:
        try:
            fields = json.loads(body) if body else {}
        except ValueError:
            return 400, _error(400, "Incorrect request: the body is not JSON")
        if not isinstance(fields, dict):
            return 400, _error(400, "Incorrect request: the body is not a JSON object")
        token = fields.get("token")
        for key, value in headers:
            if key == b"authorization" and value.startswith(b"Bearer "):
                token = value[7:].decode("latin-1")
        if not token:
            return 401, _error(401, "API token required")
        if token == self.readonly_token or (token == self.token and self.deny_token):
            return 403, _error(403, "No access rights")
        if token != self.token:
            return 401, _error(401, "Invalid API token")
        if name not in CALLS:
            return 404, _error(404, "Unknown method")
        if name == "list":
            data = [{"id": i, "name": s.name} for i, s in sorted(self.lists.items())]
            return 200, _ok(data=data)
        list_id = fields.get("id")
        found = self.lists.get(list_id) if isinstance(list_id, int) else None
        if found is None:
            return 400, _error(400, "Incorrect request: suppression list not found")
        if name == "emails_add":
            return _add(found.emails, fields.get("emails"), "total_updated")
        if name == "phones_add":
            return _add(found.phones, fields.get("values"), "total_invalid")
        if name == "email_check":
            email = str(fields.get("email") or "").strip().lower()
            hit = email in found.emails
            return 200, _ok(matched=hit, email_matched=hit, domain_matched=False)
        if name == "phone_check":
            return 200, _ok(matched=str(fields.get("value") or "") in found.phones)
        # a *_remove: served as Altcraft would, so that calling one is visible
        values = fields.get("emails") or fields.get("values") or []
        single = fields.get("email") or fields.get("value")
        target = found.emails if name.startswith("email") else found.phones
        for v in [single, *values] if single else values:
            target.pop(str(v), None)
        if name in ("emails_remove", "phones_remove") and not values:
            target.clear()  # careful: Altcraft's phones_remove empties the list
        return 200, _ok()


def _add(target: dict[str, int], values: Any, extra: str) -> tuple[int, bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return 400, _error(400, "Incorrect request: a list of strings is required")
    duplicated = imported = 0
    for v in values:
        key = v.strip().lower() if "@" in v else v.strip()
        if key in target:
            duplicated += 1
        else:
            imported += 1
        target[key] = target.get(key, 0) + 1
    answer = _ok(
        total_count=len(values),
        total_duplicated=duplicated,
        total_imported=imported,
        **{extra: 0},
    )
    return 200, answer


def _ok(**fields: Any) -> bytes:
    return json.dumps({"error": 0, "error_text": "Successful operation", **fields}).encode()


def _error(code: int, text: str) -> bytes:
    return json.dumps({"error": code, "error_text": text}).encode()


# ---------------------------------------------------------------- the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``erasure sandbox``'s suppression options (also ``POST /__sandbox/suppress``)."""
    group = parser.add_argument_group("suppression lists (also POST /__sandbox/suppress)")
    group.add_argument(
        "--suppression-lists",
        metavar="IDS",
        help="comma-separated list ids that exist besides 7 and 8 (e.g. 1,2)",
    )
    for name, what in (
        ("fail_429", "answer 429 (Retry-After: 0)"),
        ("fail_5xx", "answer 500 with an Altcraft body"),
        ("hang", "answer nothing for --suppress-hang-s seconds, then drop"),
    ):
        group.add_argument(
            "--suppress-" + name.replace("_", "-"),
            metavar="P",
            type=float,
            help=f"probability that a suppression call is made to {what}",
        )
    group.add_argument("--suppress-hang-s", metavar="S", type=float, help="a hang's length (30)")
    group.add_argument(
        "--suppress-deny-token",
        action="store_true",
        default=None,
        help="answer 403 to the delete token: a token without the suppression right",
    )


def configure_from(suppressions: Suppressions, args: argparse.Namespace) -> None:
    """Apply :func:`add_arguments`' options; a bad one is :class:`ValueError`."""
    changes: dict[str, Any] = {}
    if args.suppression_lists:
        changes["lists"] = [int(i) for i in str(args.suppression_lists).split(",") if i.strip()]
    for name in ("fail_429", "fail_5xx", "hang", "hang_s", "deny_token"):
        value = getattr(args, "suppress_" + name, None)
        if value is not None:
            changes[name] = value
    for name in ("fail_429", "fail_5xx", "hang"):
        if not 0 <= changes.get(name, 0) <= 1:
            raise ValueError(f"--suppress-{name.replace('_', '-')}: expected 0 to 1")
    suppressions.configure(changes)
