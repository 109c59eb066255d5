"""``[notify]``: queue a notice when a request's state changes, deliver it, signed.

::

    requests a run touched (an outcome, an invalid or resolved record in it)
      -> their state now (erasure.report: status, partition reason, counts, deadline)
      -> a new idempotency key since the request's last notice?  queue it (a "notice"
         event, status queued, holding the body: no identifier is in it)
      -> deliver: POST, signed; retried with backoff within [notify] max_time_s;
         each attempt a "notice" event (delivered | failed)

A request held for a year is not announced every night: only a change of
status or reasons makes a new notice. Undelivered notices (queued, never
delivered) are what ``erasure notify`` sends; a run never changes its exit
code for them. Delivery stops for the rest of a command once one notice
used all its attempts: the receiver is down, and ``erasure notify`` (exit
75 while any remain) catches up.

Time is injected: :class:`Deliverer` takes ``clock`` (seconds, Unix time)
and ``sleep``; the tests pass a fake pair, so the suite waits for nothing.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import httpx

from erasure import logs
from erasure.after import notice as notice_mod
from erasure.after.keep import Notify
from erasure.after.suppressions import ensure_indexes
from erasure.errors import SecretMissing
from erasure.files import read_secret
from erasure.job import Job
from erasure.ledger import Event, Kind, finality
from erasure.ledger.details import NoticeDetail, encode, loads

QUEUED: Final = "queued"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"
BACKOFF_BASE_S = 0.5  # seconds before the second attempt, doubling, jittered
BACKOFF_CAP_S = 15.0  # seconds: no single wait is longer
_LIST = re.compile(r"kept on suppression list (\d+)")


@dataclass(frozen=True, slots=True)
class Pending:
    """A queued notice not yet delivered."""

    seq: int  # its queued event
    request_id: str
    idempotency_key: str
    body: bytes


# ---------------------------------------------------------------- what to announce


def touched(db: sqlite3.Connection, run: int) -> list[str]:
    """Request ids that ``run`` gave an outcome, an invalid or a resolved record."""
    rows = db.execute(
        "SELECT DISTINCT request_id FROM events WHERE run = ? AND request_id IS NOT NULL "
        "AND kind IN ('outcome', 'invalid', 'resolved') ORDER BY request_id",
        (run,),
    )
    return [str(r) for (r,) in rows]


def state_of(db: sqlite3.Connection, request_id: str) -> notice_mod.State | None:
    """One request's state from the ledger, in the report's words (never an identifier)."""
    from erasure import report

    rows = report.table(db, request_id=request_id)
    if not rows.height:
        return None
    # what a notice calls final is borne out by the events (78 if not)
    finality.check_keys(db, rows.get_column("key").drop_nulls().to_list())
    found = report.requests(rows).row(0, named=True)
    status, reasons = notice_mod.reasons_of(found["why"])
    names = ("identifiers", "erased", "not_found", "rejected", "failed", "pending")
    counts = [(name, int(found[name] or 0)) for name in names if name in found]
    counts.append(("invalid_unresolved", int(found.get("invalid") or 0)))
    lists = sorted(
        {
            int(m.group(1))
            for text in rows.get_column("suppressed").drop_nulls().to_list()
            if (m := _LIST.match(text))
        }
    )
    deadline = found.get("deadline")
    return notice_mod.State(
        request_id=request_id,
        status=status,
        reasons=reasons,
        counts=tuple(counts),
        deadline=None if deadline is None else str(deadline),
        suppression_lists=tuple(lists),
    )


def last_keys(db: sqlite3.Connection) -> dict[str, str]:
    """Per request id, the idempotency key of its last queued notice."""
    rows = db.execute(
        "SELECT request_id, json_extract(detail, '$.idempotency_key') FROM events "
        "WHERE kind = 'notice' AND json_extract(detail, '$.status') = ? ORDER BY seq",
        (QUEUED,),
    )
    return {str(r): str(k) for r, k in rows}


def queue(
    db: sqlite3.Connection,
    settings: Notify,
    run: int,
    request_ids: Sequence[str],
    receipt: Callable[[str, str], str | None] | None = None,
) -> list[Event]:
    """The ``queued`` events of the requests whose state changed since their last notice.

    ``receipt(request_id, idempotency_key)``, when given (``[receipts]`` is
    set), issues the request's receipt and answers its SHA-256 (or None).
    """
    known = last_keys(db)
    out: list[Event] = []
    for rid in request_ids:
        state = state_of(db, rid)
        if state is None or known.get(rid) == state.idempotency_key:
            continue
        if receipt is not None:
            state = replace(state, receipt_sha256=receipt(rid, state.idempotency_key))
        payload = notice_mod.body(state, settings.format, settings.url)
        detail = NoticeDetail(QUEUED, state.idempotency_key, body=payload.decode())
        out.append(Event(Kind.NOTICE, run, request_id=rid, detail=encode(detail)))
    return out


def undelivered(db: sqlite3.Connection) -> list[Pending]:
    """Queued notices with no ``delivered`` event after them, oldest first."""
    delivered = {
        str(k)
        for (k,) in db.execute(
            "SELECT json_extract(detail, '$.idempotency_key') FROM events "
            "WHERE kind = 'notice' AND json_extract(detail, '$.status') = ?",
            (DELIVERED,),
        )
    }
    out: list[Pending] = []
    seen: set[str] = set()
    rows = db.execute(
        "SELECT seq, request_id, detail FROM events WHERE kind = 'notice' "
        "AND json_extract(detail, '$.status') = ? ORDER BY seq",
        (QUEUED,),
    )
    for seq, rid, detail in rows:
        d = loads(NoticeDetail, detail)
        key = d.idempotency_key
        if key in delivered or key in seen:
            continue
        seen.add(key)
        out.append(Pending(int(seq), str(rid), key, (d.body or "").encode()))
    return out


RECEIPTS_PER_RUN = 50  # receipts issued for notices in one command, at most (each reads the
# whole ledger: erasure.after.receipt.build); past it a notice's receipt_sha256 is null


class ReceiptIssuer:
    """Issues the receipt a notice cites: written beside the ledger, its SHA-256 in the body.

    ``<ledger stem>-receipts/<sha256(request id)[:24]>-<idempotency key>.json``, signed
    with ``[receipts]``; ``erasure check-receipt`` checks it. A receipt that cannot be
    issued (no signing key, a broken chain) leaves the digest null: a notice never fails
    for it.
    """

    def __init__(self, job: Job, limit: int = RECEIPTS_PER_RUN) -> None:
        self.job = job
        self.left = limit
        self.folder = job.ledger.path.with_name(job.ledger.path.stem + "-receipts")

    def __call__(self, request_id: str, idempotency_key: str) -> str | None:
        import hashlib

        from erasure.after import receipt
        from erasure.errors import ErasureError

        if self.left <= 0:
            return None
        self.left -= 1
        name = hashlib.sha256(request_id.encode()).hexdigest()[:24]
        try:
            signed = receipt.build(self.job, request_id)
            self.folder.mkdir(mode=0o700, exist_ok=True)
            receipt.write(signed, self.folder / f"{name}-{idempotency_key}.json", self.job.perms)
        except ErasureError as exc:
            logs.get().warning("erasure.notice.no_receipt", request_id=request_id, error=str(exc))
            return None
        return hashlib.sha256(signed.raw).hexdigest()


# ---------------------------------------------------------------- delivering


def secret(job: Job) -> bytes:
    """The notify secret, from ``secret_env`` or ``secret_file`` (owner-only)."""
    import os

    s = job.notify
    assert s is not None
    if s.secret_file is not None:
        return read_secret(s.secret_file, "notify secret file").encode()
    assert s.secret_env is not None
    value = os.environ.get(s.secret_env, "")
    if not value:
        raise SecretMissing(
            f"notify secret is missing: set the environment variable {s.secret_env}"
            " (named by [notify] secret_env)"
        )
    return value.encode()


class Deliverer:
    """Sends notices, signed, with retries bounded in time; records every attempt."""

    def __init__(
        self,
        settings: Notify,
        secret_: bytes,
        run: int,
        append: Callable[[Sequence[Event]], None],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.secret = secret_
        self.run = run
        self.append = append
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.client = httpx.Client(
            transport=transport, timeout=settings.timeout_s, follow_redirects=False
        )
        self.log = logs.get()

    def close(self) -> None:
        self.client.close()

    def deliver_all(self, pending: Sequence[Pending]) -> tuple[int, int]:
        """(delivered, left): stops at the first notice whose attempts all failed."""
        delivered = 0
        for i, p in enumerate(pending):
            if self.deliver(p):
                delivered += 1
            else:
                return delivered, len(pending) - i
        return delivered, 0

    def deliver(self, p: Pending) -> bool:
        """One notice: attempts until delivered, refused for good, or out of time."""
        s = self.settings
        started = self.clock()
        attempt = 1
        while True:
            ok, retry, reason, status = self._post(p)
            self._record(p, attempt, ok, reason, status)
            if ok:
                return True
            wait = self.rand() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
            spent = self.clock() - started
            if not retry or attempt >= s.max_attempts or spent + wait > s.max_time_s:
                self.log.warning(
                    "erasure.notice.undelivered",
                    request_id=p.request_id,
                    reason=reason,
                    attempts=attempt,
                )
                return False
            self.sleep(wait)
            attempt += 1

    def _post(self, p: Pending) -> tuple[bool, bool, str, int | None]:
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            notice_mod.SIGNATURE_HEADER: notice_mod.signature(self.secret, timestamp, p.body),
            notice_mod.IDEMPOTENCY_HEADER: p.idempotency_key,
            "User-Agent": "erasure-notify",
        }
        try:
            response = self.client.post(self.settings.url, content=p.body, headers=headers)
        except httpx.TimeoutException:
            return False, True, "timeout", None
        except httpx.TransportError:
            return False, True, "connection", None
        code = response.status_code
        if 200 <= code < 300:
            return True, False, "ok", code
        transient = code in (408, 425, 429) or code >= 500
        return False, transient, f"http_{code}", code

    def _record(self, p: Pending, attempt: int, ok: bool, reason: str, status: int | None) -> None:
        detail = NoticeDetail(
            DELIVERED if ok else FAILED,
            p.idempotency_key,
            attempt=attempt,
            reason=reason,
            queued_seq=p.seq,
        )
        event = Event(
            Kind.NOTICE,
            self.run,
            request_id=p.request_id,
            http_status=status,
            detail=encode(detail),
        )
        self.append([event])


# ---------------------------------------------------------------- erasure notify


@dataclass(frozen=True, slots=True)
class Sent:
    """What ``erasure notify`` did."""

    delivered: int
    left: int  # still undelivered: exit 75


def send_undelivered(
    job: Job,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> Sent:
    """``erasure notify JOB``: deliver every queued notice not delivered yet.

    Takes the ledger's lock (a run holding it: 75, as for ``run``); needs the
    ledger key and the notify secret (78 without them).
    """
    from erasure.errors import ConfigError
    from erasure.keys import Role
    from erasure.ledger import Ledger

    if job.notify is None:
        raise ConfigError("job file: erasure notify needs a [notify] section (url, secret_env)")
    key = secret(job)
    keyer = job.keyer(Role.CHAIN, command="erasure notify")
    with Ledger(job.ledger.path, keyer, perms=job.perms) as ledger:
        ensure_indexes(ledger.connection)
        todo = undelivered(ledger.connection)
        deliverer = Deliverer(
            job.notify, key, 0, ledger.append, clock=clock, sleep=sleep, transport=transport
        )
        try:
            delivered, left = deliverer.deliver_all(todo)
        finally:
            deliverer.close()
    return Sent(delivered, left)
