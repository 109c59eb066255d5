"""``[suppress]``: erased people's emails and phones onto Altcraft suppression lists.

::

    tonight's input (email/phone keys and values)
      ∩ keys whose final outcome is erased (not_found with include_not_found)
      − keys already on that list per the ledger (a "suppression" event, status added)
      = what to add: batched emails_add / phones_add, each addition an event

Resume is that set arithmetic: a run killed before or during the additions
leaves the keys without an ``added`` event, and the next run on the same
input adds them (Altcraft answers a value added twice as ``total_duplicated``,
so a batch sent twice keeps the list as it was). Never a ``*_remove`` call.

The run's preflight checks each list before any delete
(:func:`erasure.after.hooks.before_run`: ``email_check`` for the email
list, ``phone_check`` for the phone list, on an address that cannot
exist); without a preflight, the list is checked before its first addition.
A failure, a token without the suppression right included, never stops or
undoes a delete and is never exit 77: it is an event with status
``failed`` (or ``check_failed``), counted in the run's summary, and makes
the run's exit code 1; the next run tries again.

The calls, as Altcraft documents them (developer guide, "Suppression list
actions"; the sandbox serves the same, erasure/sandbox/suppress.py)::

    POST {base_url}/api/v1.1/suppresses/emails_add   {"id": 7, "emails": ["a@b.ru"]}   (2195627)
      -> {"error": 0, "error_text": "...", "total_count", "total_duplicated",
          "total_imported", "total_updated"}
    POST {base_url}/api/v1.1/suppresses/phones_add   {"id": 8, "values": ["+79..."]} (76809091)
      -> {"error": 0, ..., "total_count", "total_duplicated", "total_imported", "total_invalid"}
    POST {base_url}/api/v1.1/suppresses/email_check  {"id": 7, "email": "..."}        (2195633)
      -> {"error": 0, "matched", "email_matched", "domain_matched"}
    POST {base_url}/api/v1.1/suppresses/phone_check  {"id": 8, "value": "..."}
      (its body is assumed from phone_add's, page 76809087: the page was not found)

The token goes as ``Authorization: Bearer``, never in the URL; bodies are
JSON whatever ``[api] format`` says (XML suppression bodies are not
supported). Success is HTTP 2xx and ``error == 0``. HTTP 429, 5xx and
transport failures (a hang ends at ``[api] timeout_s``) are retried under
the run's ``max_attempts`` and backoff, at the run's rate ceiling; any
other answer fails the batch at once.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import polars as pl

from erasure import logs
from erasure.after.keep import Suppress
from erasure.after.suppressions import Status
from erasure.job import Job
from erasure.ledger import Event, Kind, Outcome, finality
from erasure.ledger.details import SuppressionDetail, encode
from erasure.ratelimit import RateLimiter
from erasure.run.retry import Backoff

PATH = "/api/v1.1/suppresses/"
CANDIDATES_SCHEMA = pl.Schema(
    [("key", pl.String()), ("matching", pl.String()), ("value", pl.String()), ("db_id", pl.Int64())]
)


@dataclass(frozen=True, slots=True)
class Kept:
    """What the suppression step did in one run."""

    added: int = 0  # values now on a list
    failed: int = 0  # values whose addition failed (the next run tries again)
    check_failed: tuple[int, ...] = ()  # lists whose check failed

    @property
    def trouble(self) -> bool:
        return bool(self.failed or self.check_failed)


def candidates(job: Job, items: pl.DataFrame) -> pl.DataFrame | None:
    """The input's email and phone identifiers a list could take, one row per key.

    None when ``[suppress]`` is off: nothing is kept for it.
    """
    s = job.suppress
    if s is None:
        return None
    wanted = [
        m for m, list_id in (("email", s.email_list_id), ("phone", s.phone_list_id)) if list_id
    ]
    found = items.lazy().filter(pl.col("matching").is_in(wanted))
    found = found.select(CANDIDATES_SCHEMA.names()).unique("key", keep="first", maintain_order=True)
    return found.collect().cast(CANDIDATES_SCHEMA)


def list_of(s: Suppress, matching: str) -> int | None:
    return s.email_list_id if matching == "email" else s.phone_list_id


def pending(db: sqlite3.Connection, s: Suppress, found: pl.DataFrame) -> pl.DataFrame:
    """``found`` less what the ledger does not allow yet or already added (see the module).

    Raises :class:`~erasure.errors.StateDisagrees` (78) when an outcome the
    derived state cites for them is not borne out by the events.
    """
    from erasure.ledger import read as ledger_read

    if not found.height:
        return found
    finished, _ = ledger_read.tonight(db, found.get_column("key"))
    outcomes = [Outcome.ERASED.value]
    if s.include_not_found:
        outcomes.append(Outcome.NOT_FOUND.value)
    done = finished.filter(pl.col("outcome").is_in(outcomes)).get_column("key").unique()
    ready = found.filter(pl.col("key").is_in(done.implode()))
    added = {
        (key, int(lst))
        for key, lst in db.execute(
            "SELECT key, json_extract(detail, '$.list') FROM events "
            "WHERE kind = 'suppression' AND json_extract(detail, '$.status') = ?",
            (Status.ADDED.value,),
        )
    }
    keep = [(k, list_of(s, m)) not in added for k, m in ready.select("key", "matching").iter_rows()]
    todo = ready.filter(pl.Series(keep, dtype=pl.Boolean))
    # an address goes on a list only for an erasure its events bear out (78 if not)
    finality.check_keys(db, todo.get_column("key").to_list())
    return todo


# ---------------------------------------------------------------- the calls


@dataclass(frozen=True, slots=True)
class _Answer:
    ok: bool
    retry: bool  # transient: 429, 5xx, transport
    reason: str  # a code for the event: ok, http_429, http_500, error_403, timeout, ...
    http_status: int | None = None
    error_code: int | None = None
    retry_after_s: float | None = None
    body: dict[str, Any] | None = None


Checked = _Answer  # a list's check: ``ok``, and its ``reason`` when not


class Keeper:
    """The suppression step of one run: check each list, then add in batches."""

    def __init__(
        self,
        job: Job,
        token: str,
        run: int,
        append: Callable[[Sequence[Event]], None],
        *,
        backoff: Backoff | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert job.suppress is not None
        self.job = job
        self.settings = job.suppress
        self.token = token
        self.run = run
        self.append = append
        self.backoff = backoff or Backoff.for_run(job.run)
        self.transport = transport
        self.limiter = RateLimiter(job.run.ceiling_per_s)
        self.log = logs.get().bind(run=run)

    async def check_all(self) -> dict[int, Checked]:
        """Check each configured list (the run's preflight, before any delete)."""
        found: dict[int, Checked] = {}
        async with self._client() as client:
            for matching in ("email", "phone"):
                list_id = list_of(self.settings, matching)
                if list_id is not None:
                    found[list_id] = await self._check(client, matching, list_id)
        return found

    async def keep(
        self, todo: pl.DataFrame, checked_before: dict[int, Checked] | None = None
    ) -> Kept:
        """Add ``todo``'s values to their lists; record every addition.

        A list ``checked_before`` (by :meth:`check_all`) is not checked again.
        """
        added = failed = 0
        bad: list[int] = []
        async with self._client() as client:
            for matching in ("email", "phone"):
                rows = todo.filter(pl.col("matching") == matching)
                list_id = list_of(self.settings, matching)
                if not rows.height or list_id is None:
                    continue
                checked = (checked_before or {}).get(list_id)
                if checked is None:
                    checked = await self._check(client, matching, list_id)
                if not checked.ok:
                    bad.append(list_id)
                    failed += rows.height
                    self._record(rows, list_id, Status.CHECK_FAILED, checked)
                    continue
                size = self.settings.batch_size
                for offset in range(0, rows.height, size):
                    batch = rows.slice(offset, size)
                    answer = await self._call(client, _ADD[matching], list_id, batch)
                    if answer.ok:
                        added += batch.height
                        self._record(batch, list_id, Status.ADDED, answer)
                    else:
                        failed += batch.height
                        self._record(batch, list_id, Status.FAILED, answer)
        return Kept(added, failed, tuple(bad))

    def _client(self) -> httpx.AsyncClient:
        from erasure.client import proxy_for, ssl_context

        api = self.job.api
        base = api.base_url.rstrip("/") + PATH
        transport = self.transport
        if transport is None:
            ca = None if api.ca_bundle is None else str(api.ca_bundle)
            transport = httpx.AsyncHTTPTransport(
                verify=ssl_context(ca), proxy=proxy_for(httpx.URL(base))
            )
        return httpx.AsyncClient(
            base_url=base,
            transport=transport,
            timeout=api.timeout_s,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            follow_redirects=False,
        )

    async def _check(self, client: httpx.AsyncClient, matching: str, list_id: int) -> _Answer:
        probe = secrets.token_hex(8)
        if matching == "email":
            body: dict[str, Any] = {
                "id": list_id,
                "email": f"erasure-preflight-{probe}@example.com",
            }
            name = "email_check"
        else:
            body = {"id": list_id, "value": "+1555" + str(int(probe, 16))[:7]}
            name = "phone_check"
        answer = await self._retrying(client, name, body)
        self.log.info("erasure.suppress.checked", list=list_id, ok=answer.ok, reason=answer.reason)
        return answer

    async def _call(
        self, client: httpx.AsyncClient, name: str, list_id: int, batch: pl.DataFrame
    ) -> _Answer:
        field = "emails" if name == "emails_add" else "values"
        body = {"id": list_id, field: batch.get_column("value").to_list()}
        answer = await self._retrying(client, name, body)
        self.log.info(
            "erasure.suppress.batch",
            list=list_id,
            values=batch.height,
            ok=answer.ok,
            reason=answer.reason,
        )
        return answer

    async def _retrying(
        self, client: httpx.AsyncClient, name: str, body: dict[str, Any]
    ) -> _Answer:
        attempt = 1
        while True:
            await self.limiter.acquire()
            answer = await _post(client, name, body)
            if answer.ok or not answer.retry or attempt >= self.backoff.max_attempts:
                return answer
            after = answer.retry_after_s
            if after is not None and after > self.backoff.retry_after_cap_s:
                return answer
            await anyio.sleep(self.backoff.wait_s(attempt, after, random.random()))
            attempt += 1

    def _record(self, rows: pl.DataFrame, list_id: int, status: Status, answer: _Answer) -> None:
        batch = None
        if answer.ok and answer.body is not None and "total_duplicated" in answer.body:
            batch = {
                k: answer.body[k]
                for k in ("total_count", "total_duplicated", "total_imported")
                if type(answer.body.get(k)) is int  # never a bool: the detail declares integers
            }
        reason = None if answer.ok else answer.reason
        text = encode(SuppressionDetail(list_id, status.value, reason, batch))
        self.append(
            [
                Event(
                    Kind.SUPPRESSION,
                    self.run,
                    key=key,
                    db_id=db_id,
                    matching=matching,
                    error_code=answer.error_code,
                    http_status=answer.http_status,
                    detail=text,
                )
                for key, matching, db_id in rows.select("key", "matching", "db_id").iter_rows()
            ]
        )


_ADD = {"email": "emails_add", "phone": "phones_add"}


async def _post(client: httpx.AsyncClient, name: str, body: dict[str, Any]) -> _Answer:
    """One call; every failure an answer (the body's values never reach a log)."""
    try:
        response = await client.post(name, json=body)
    except httpx.TimeoutException:
        return _Answer(False, True, "timeout")
    except httpx.TransportError:
        return _Answer(False, True, "transport")
    status = response.status_code
    parsed: dict[str, Any] | None = None
    try:
        value = response.json()
        parsed = value if isinstance(value, dict) else None
    except ValueError:
        parsed = None
    code = parsed.get("error") if parsed is not None else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if status == 429 or status >= 500:
        after = _retry_after(response.headers.get("retry-after"))
        return _Answer(False, True, f"http_{status}", status, code, after)
    if 200 <= status < 300 and code == 0:
        return _Answer(True, False, "ok", status, 0, body=parsed)
    reason = f"error_{code}" if code is not None else f"http_{status}"
    return _Answer(False, False, reason, status, code)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
