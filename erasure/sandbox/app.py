"""The sandbox as a raw ASGI application: no framework, for speed.

Routes::

    POST /api/v1.1/profiles/delete   the Altcraft endpoint (see protocol.py)
    GET  /__sandbox/stats            counters (see stats.py); ?per_profile=0 leaves out
                                     deletes_per_profile
    GET  /__sandbox/config           the current settings (see settings.py)
    POST /__sandbox/config           change settings: a JSON object of setting names and
                                     values, plus "seed" to reseed the faults; answers
                                     the new settings, or 400 {"error": "..."}; e.g.
                                     {"rate_limit": 50} moves the rate limit mid-run
    GET  /__sandbox/export?db_id=N   live profiles as CSV       (see admin.py)
    POST /__sandbox/restore          deleted profiles come back (see admin.py)
    POST /__sandbox/import           a new profile              (see admin.py)
    POST /api/v1.1/suppresses/...    suppression lists, add and check  (see suppress.py)
    GET|POST /__sandbox/suppress     their contents and faults          (see suppress.py)
    anything else                    404 (405 on a known path) text/html, no Altcraft
                                     body, as a proxy in front of a wrong URL answers

A delete request goes through, in this order: the rate limit, the fault dice
(decided at arrival), the latency, a fault before the delete, the service
(content type, body, token 401/403, tariff 402, fields 400, unknown database
400, lookup 404 or the delete), then a fault after the service answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from erasure.sandbox import admin, faults, protocol, suppress
from erasure.sandbox.asgi import Receive, Scope, Send, drop, lifespan, read_body, respond
from erasure.sandbox.faults import Dice, Fault, TokenBucket
from erasure.sandbox.protocol import BadRequest, Format
from erasure.sandbox.settings import Settings, update
from erasure.sandbox.stats import Stats
from erasure.sandbox.store import Store

DELETE_PATH = "/api/v1.1/profiles/delete"
STATS_PATH = "/__sandbox/stats"
CONFIG_PATH = "/__sandbox/config"
DEFAULT_TOKEN = "sandbox-token"
DEFAULT_READONLY_TOKEN = "sandbox-readonly-token"

HTML = b"text/html"
JSON = b"application/json"
NOT_FOUND_PAGE = (
    b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
)
NOT_ALLOWED_PAGE = (
    b"<html><head><title>405 Not Allowed</title></head><body><h1>Not Allowed</h1></body></html>\n"
)


class SandboxApp:
    """An Altcraft-compatible delete endpoint over a :class:`Store`, with faults."""

    def __init__(
        self,
        store: Store,
        *,
        token: str = DEFAULT_TOKEN,
        readonly_token: str = DEFAULT_READONLY_TOKEN,
        settings: Settings | None = None,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.token = token  # may delete
        self.readonly_token = readonly_token  # valid, without the delete permission
        self.stats = Stats()
        self.dice = Dice(seed)
        self.settings = Settings()
        self.bucket: TokenBucket | None = None
        self.stopping = asyncio.Event()  # set when the server shuts down: hangs end
        # Called when connection faults are switched on (server.py wires it): the
        # server's idle HTTP connections are closed, so clients come back through
        # the raw front, which routes connections at accept.
        self.on_connection_faults: Callable[[], None] = lambda: None
        self._not_found: dict[tuple[int, Format], bytes] = {}
        self.suppressions = suppress.Suppressions(token, readonly_token)  # suppress.py
        self.configure(settings or Settings())

    def configure(self, settings: Settings) -> None:
        old = self.settings
        if settings.rate_limit is None:
            self.bucket = None
        else:
            burst = settings.rate_limit if settings.rate_burst is None else settings.rate_burst
            if self.bucket is None:
                self.bucket = TokenBucket(settings.rate_limit, burst)
            elif (old.rate_limit, old.rate_burst) != (settings.rate_limit, settings.rate_burst):
                self.bucket.retune(settings.rate_limit, burst)  # a limit that moves mid-run
        self.settings = settings
        self._faults = (settings.faults_before, settings.faults_after)  # checked per request
        if settings.connection_faults and not old.connection_faults:
            self.on_connection_faults()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == DELETE_PATH:
            if method == "POST":
                await self._delete(scope, receive, send)
            else:
                await respond(send, 405, HTML, NOT_ALLOWED_PAGE, [(b"allow", b"POST")])
        elif path == STATS_PATH and method == "GET":
            per_profile = b"per_profile=0" not in scope.get("query_string", b"")
            stats = self.stats.to_dict(self.store, per_profile=per_profile)
            if self.settings.record_times:
                stats.setdefault("request_times", [])
            await respond(send, 200, JSON, json.dumps(stats).encode())
        elif path == CONFIG_PATH and method in ("GET", "POST"):
            await self._config(method, receive, send)
        elif path.startswith(suppress.PREFIX) and method == "POST":
            name = path.removeprefix(suppress.PREFIX)
            await self.suppressions.serve(name, scope["headers"], receive, send, self.stopping)
        elif path == suppress.CONTROL_PATH and method in ("GET", "POST"):
            await self.suppressions.control(method, receive, send)
        elif path in _ADMIN and method == _ADMIN[path]:
            await self._admin(path, scope, receive, send)
        elif path in (STATS_PATH, CONFIG_PATH) or path in _ADMIN:
            await respond(send, 405, HTML, NOT_ALLOWED_PAGE)
        else:
            await respond(send, 404, HTML, NOT_FOUND_PAGE)

    async def _delete(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        faults_before, faults_after = self._faults
        self.stats.arrived(time.time(), settings.record_times)
        content_type = authorization = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
        fmt = protocol.body_format(content_type)
        body = await read_body(receive)
        if faults_before and await self._fault_before(settings, fmt, receive, send):
            return
        kind, status, answer = self._serve(settings, fmt, body, authorization)
        answer_fmt: Format = fmt or "json"
        fault = self.dice.after(settings) if faults_after else None
        if fault is None:
            self.stats.answered(kind)
            await respond(send, status, protocol.CONTENT_TYPES[answer_fmt], answer)
            return
        self.stats.answered(fault.value + "_after_delete")
        self.stats.fire(_SWITCH[fault] + "_after_delete")
        if fault is Fault.MALFORMED:
            content_type = protocol.CONTENT_TYPES[answer_fmt]
            await respond(send, 200, content_type, faults.truncated(answer))
        elif fault is Fault.HANG:
            await self._hang(settings, receive, send)
        else:
            await drop(receive, send)

    async def _fault_before(
        self, settings: Settings, fmt: Format | None, receive: Receive, send: Send
    ) -> bool:
        """Play a fault that replaces the delete; False when none hit."""
        if self.bucket is not None:
            wait_s = self.bucket.take(time.monotonic())
            if wait_s > 0:
                self.stats.answered(Fault.RATE_LIMITED.value)
                self.stats.fire("rate_limit")
                headers = faults.retry_after(settings, wait_s)
                await respond(send, 429, b"text/plain", faults.TOO_MANY, headers)
                return True
        fault = self.dice.before(settings)
        status = self.dice.status_5xx(settings) if fault is Fault.FAIL_5XX else 0
        latency_s = self.dice.latency_s(settings)  # all drawn at arrival: reproducible
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        if fault is None:
            return False
        self.stats.fire(_SWITCH[fault])
        answer_fmt: Format = fmt or "json"
        if fault is Fault.FAIL_5XX:
            self.stats.answered(str(status))
            await respond(send, status, *_failure_page(status, answer_fmt))
            return True
        self.stats.answered(fault.value)
        if fault is Fault.FAIL_429:
            headers = faults.retry_after(settings)
            await respond(send, 429, b"text/plain", faults.TOO_MANY, headers)
        elif fault is Fault.MALFORMED:
            answer = protocol.success("5f33d33ece94481aa9382110", answer_fmt)
            content_type = protocol.CONTENT_TYPES[answer_fmt]
            await respond(send, 200, content_type, faults.truncated(answer))
        elif fault is Fault.HANG:
            await self._hang(settings, receive, send)
        else:
            await drop(receive, send)
        return True

    def _serve(
        self, settings: Settings, fmt: Format | None, body: bytes | None, authorization: bytes
    ) -> tuple[str, int, bytes]:
        """The service's own answer: (kind for the stats, HTTP status, body)."""
        if fmt is None:
            return self._error(
                settings,
                400,
                "Incorrect request: Content-Type must be application/json or xml",
                "json",
            )
        if body is None:
            return self._error(
                settings, 400, "Incorrect request: the body is larger than 10 MB", fmt
            )
        try:
            fields = protocol.decode(body, fmt)
            token = protocol.token_of(fields, authorization)
            if not token:
                return self._error(settings, 401, protocol.TEXTS[401], fmt)
            if token == self.readonly_token:
                return self._error(settings, 403, protocol.TEXTS[403], fmt)
            if token != self.token:
                return self._error(settings, 401, "Invalid API token", fmt)
            limit = settings.tariff_limit_after
            if limit is not None and self.store.erased >= limit:
                return self._error(settings, 402, protocol.TEXTS[402], fmt)
            request = protocol.parse(fields, fmt)
            if request.db_id not in self.store.databases:
                raise BadRequest(f"database {request.db_id} does not exist")
        except BadRequest as exc:
            return self._error(settings, 400, f"{protocol.TEXTS[400]}: {exc}", fmt)
        targets = self.store.find(
            request.db_id,
            request.matching,
            request.value,
            field_name=request.field_name,
            resource_id=request.resource_id,
        )
        profile = self.store.delete(targets) if targets else None
        if profile is not None:
            return "erased", 200, protocol.success(profile.profile_id, fmt)
        return self._not_found_answer(settings, request.value, fmt)

    def _not_found_answer(
        self, settings: Settings, value: str, fmt: Format
    ) -> tuple[str, int, bytes]:
        code = settings.not_found_code
        status = code if settings.error_status == "4xx" else 200
        if settings.echo_identifier:
            text = f"{protocol.TEXTS[404]}: {value.strip()}"
            return "not_found", status, protocol.error(code, text, fmt)
        answer = self._not_found.get((code, fmt))
        if answer is None:
            answer = self._not_found[code, fmt] = protocol.error(code, protocol.TEXTS[404], fmt)
        return "not_found", status, answer

    def _error(
        self, settings: Settings, code: int, text: str, fmt: Format
    ) -> tuple[str, int, bytes]:
        status = code if settings.error_status == "4xx" else 200
        return str(code), status, protocol.error(code, text, fmt)

    async def _hang(self, settings: Settings, receive: Receive, send: Send) -> None:
        """Answer nothing for hang_s seconds (or until the server stops), then drop."""
        try:
            await asyncio.wait_for(self.stopping.wait(), settings.hang_s)
        except TimeoutError:
            pass
        await drop(receive, send)

    async def _admin(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Export, restore and re-import (see admin.py)."""
        try:
            if path == admin.EXPORT_PATH:
                db_id = admin.export_db_id(scope.get("query_string", b""))
                csv_body = admin.export_csv(self.store, db_id)
                await respond(send, 200, b"text/csv; charset=utf-8", csv_body)
                return
            body = await read_body(receive) or b""
            if path == admin.RESTORE_PATH:
                answer = admin.restore(self.store, self.stats, body)
            else:
                answer = admin.reimport(self.store, self.stats, body)
        except admin.AdminError as exc:
            await respond(send, exc.status, JSON, json.dumps({"error": str(exc)}).encode())
            return
        await respond(send, 200, JSON, answer)

    async def _config(self, method: str, receive: Receive, send: Send) -> None:
        if method == "POST":
            try:
                changes = json.loads(await read_body(receive) or b"")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                seed = changes.pop("seed", None)
                if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                    raise ValueError("seed must be an integer")
                settings = update(self.settings, changes)
            except ValueError as exc:
                await respond(send, 400, JSON, json.dumps({"error": str(exc)}).encode())
                return
            if seed is not None:
                self.dice = Dice(seed)
            self.configure(settings)
        await respond(send, 200, JSON, json.dumps(self.settings.to_dict()).encode())


# The admin calls of admin.py and their methods.
_ADMIN = {admin.EXPORT_PATH: "GET", admin.RESTORE_PATH: "POST", admin.IMPORT_PATH: "POST"}

# The setting that makes each fault (the names in the stats' "fired").
_SWITCH = {
    Fault.RATE_LIMITED: "rate_limit",
    Fault.HANG: "hang",
    Fault.DROP: "drop",
    Fault.FAIL_429: "fail_429",
    Fault.FAIL_5XX: "fail_5xx",
    Fault.MALFORMED: "malformed",
}


def _failure_page(status: int, fmt: Format) -> tuple[bytes, bytes]:
    """(content type, body) of a 5xx: Altcraft-shaped for 500, a proxy page otherwise."""
    if status == 500:
        return protocol.CONTENT_TYPES[fmt], protocol.error(500, faults.INTERNAL_ERROR_TEXT, fmt)
    page = faults.PROXY_PAGES.get(status, b"<html><body><h1>%d</h1></body></html>\n" % status)
    return HTML, page
