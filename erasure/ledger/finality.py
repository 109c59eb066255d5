"""Before a command treats a pair as final, the event its derived state cites must say so.

``pair_state`` (erasure.ledger.state) is kept by triggers, but anyone with
``sqlite3`` can insert a row into it, and a run would then skip that person,
``lookup`` answer "erased". So every command that acts on a pair's outcome
(``run``, ``sweep``, ``lookup``, ``screen``) first checks, for the keys at
hand only, that each outcome the state cites (``outcome_seq``,
``final_seq``) is an ``outcome`` event of the same request id and key with
that outcome, whose link is valid: the keyed HMAC link when the command holds
the ledger key, else the plain SHA-256 link. A pair whose cited event was
archived is checked against the sealed ``base_pair_state`` copy instead (its
hash is in the archive record that ``verify`` checks). A disagreement is
:class:`~erasure.errors.StateDisagrees` (78), pointing to ``erasure verify``.

Cost: one indexed read per pair of those keys, one hash per cited event.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from erasure.errors import StateDisagrees
from erasure.keys import Keyer, Role
from erasure.ledger.events import COLUMNS, EVENT_FIELDS, Canonical, canonical_of
from erasure.plainchain import plain_link

__all__ = ["check_keys"]

_CHUNK = 10_000  # keys per query
_E = ", ".join(f"e.{c}" for c in COLUMNS)
_KIND = 2 + EVENT_FIELDS.index("kind")
_RID = 2 + EVENT_FIELDS.index("request_id")
_KEY = 2 + EVENT_FIELDS.index("key")
_OUTCOME = 2 + EVENT_FIELDS.index("outcome")


def _cited(what: str, seq: str, outcome: str) -> str:
    return f"""
    SELECT p.pair, p.request_id, p.key, '{what}', p.{seq}, p.{outcome}, {_E},
           (SELECT link FROM events WHERE seq = p.{seq} - 1),
           (SELECT link FROM plain_links WHERE seq = p.{seq}),
           (SELECT link FROM plain_links WHERE seq = p.{seq} - 1)
    FROM pair_state p LEFT JOIN events e ON e.seq = p.{seq}
    WHERE p.key IN (SELECT value FROM json_each(?1)) AND p.{outcome} IS NOT NULL
    """


# each pair's last final outcome (what resume skips), and its last outcome (what lookup
# answers)
_FINAL_ONLY = _cited("final outcome", "final_seq", "final_outcome")
_CITED = _cited("outcome", "outcome_seq", "outcome") + " UNION ALL " + _FINAL_ONLY


def check_keys(
    db: sqlite3.Connection,
    keys: Iterable[str],
    keyer: Keyer | None = None,
    *,
    final_only: bool = False,
) -> int:
    """Check every outcome ``pair_state`` cites for pairs with one of ``keys``; the count.

    Raises :class:`StateDisagrees` (78) at the first that the events do not
    bear out. ``keyer``: the ledger key, when the command holds it (the keyed
    link is then checked; else the plain SHA-256 one). ``final_only``: only
    the final outcomes (what a run skips), not the last ones (what lookup says).
    """
    chain = keyer.chain if keyer is not None and Role.CHAIN in keyer.roles else None
    wanted = sorted(set(keys))
    first = _first_live(db)
    canonical = canonical_of(dict(db.execute("SELECT name, value FROM meta").fetchall()))
    checked = 0
    for start in range(0, len(wanted), _CHUNK):
        chunk = json.dumps(wanted[start : start + _CHUNK])
        for row in db.execute(_FINAL_ONLY if final_only else _CITED, (chunk,)):
            _check(db, row, first, chain, canonical)
            checked += 1
    return checked


def _first_live(db: sqlite3.Connection) -> int:
    (seq,) = db.execute("SELECT coalesce(min(seq), 1) FROM events").fetchone()
    return int(seq)


def _check(
    db: sqlite3.Connection, row: Sequence[Any], first: int, chain: Any, canonical: Canonical
) -> None:
    pair, rid, key, what, seq, outcome = row[:6]
    event = row[6 : 6 + len(COLUMNS)]
    prev_link, plain, prev_plain = row[6 + len(COLUMNS) :]
    where = f"pair {pair} (request {rid!r}, key {key})"
    if seq is None or outcome is None:
        _fail(f"{where} has a {what} without the event that recorded it")
    if seq < first:  # archived: the sealed copy of the archived state must say the same
        if not _archived_agrees(db, pair, rid, key, what, seq, outcome):
            _fail(f"{where} cites archived event {seq}, which the archived state does not hold")
        return
    if event[0] is None:
        _fail(f"{where} cites event {seq}, which is not in the ledger")
    if (event[_KIND], event[_RID], event[_KEY], event[_OUTCOME]) != ("outcome", rid, key, outcome):
        _fail(f"{where} says {outcome!r}, but event {seq} does not record that")
    data = canonical(event[0], event[1], event[2:-1])
    if chain is not None and prev_link is not None:
        if chain(prev_link, data) != event[-1]:
            _fail(f"{where} cites event {seq}, whose link does not hold")
    elif plain is not None and prev_plain is not None and plain_link(prev_plain, data) != plain:
        _fail(f"{where} cites event {seq}, whose plain link does not hold")


def _archived_agrees(
    db: sqlite3.Connection, pair: int, rid: str | None, key: str, what: str, seq: int, outcome: str
) -> bool:
    column = "outcome" if what == "outcome" else "final_outcome"
    cited = "outcome_seq" if what == "outcome" else "final_seq"
    try:
        found = db.execute(
            f"SELECT 1 FROM base_pair_state WHERE pair = ? AND request_id IS ? AND key = ? "
            f"AND {cited} = ? AND {column} = ?",
            (pair, rid, key, seq, outcome),
        ).fetchone()
    except sqlite3.OperationalError:  # no archive: nothing before the first event
        return False
    return found is not None


def _fail(why: str) -> None:
    raise StateDisagrees(
        f"the ledger's derived state disagrees with its events: {why}; nothing was done. "
        "Run `erasure verify JOB` to find what changed (the events stay the truth)"
    )
