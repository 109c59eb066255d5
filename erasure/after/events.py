"""Reading the ledger's events for receipts and sweeps: own SQL, read-only.

The events table's columns are :data:`COLUMNS` (see :mod:`erasure.ledger`).
Each event comes with the plain SHA-256 link the ledger stored for it
(``plain_links``), so that a checker recomputing the chain finds a stored
link that was changed. A ledger written before the plain chain existed, and
not yet migrated by a run, has none: its links are computed here, over the
same canonical bytes the keyed chain covers, in seq order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from erasure import ledger as ledger_mod
from erasure.ledger.details import InvalidDetail, loads
from erasure.receipts import PLAIN_GENESIS, LedgerEvent, plain_link

__all__ = ["COLUMNS", "fields_of", "ledger_events"]

COLUMNS = ("seq", "at", *ledger_mod.Event._fields, "link")
# an outcome event does not repeat its pair's identity: absent, not "nothing"
_IDENTITY = ("db_id", "matching", "resource_id", "field_name", "received_at")


def ledger_events(db: sqlite3.Connection, *, up_to: int | None = None) -> Iterator[LedgerEvent]:
    """Every event (up to seq ``up_to``), oldest first, with its plain chain link."""
    stored = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plain_links'"
    ).fetchone()
    columns = ", ".join(f"e.{c}" for c in COLUMNS)
    sql = (
        f"SELECT {columns}, p.link FROM events e LEFT JOIN plain_links p ON p.seq = e.seq"
        if stored
        else f"SELECT {columns}, NULL FROM events e"
    )
    params: tuple[Any, ...] = ()
    if up_to is not None:
        sql += " WHERE e.seq <= ?"
        params = (up_to,)
    link = PLAIN_GENESIS
    canonical = ledger_mod.canonical_of(ledger_mod.read_meta(db))
    cursor = db.execute(sql + " ORDER BY e.seq", params)
    while rows := cursor.fetchmany(10_000):
        for *row, kept in rows:
            seq, at, *values, _keyed = row
            data = canonical(seq, at, values)
            link = plain_link(link, data) if kept is None else kept
            yield LedgerEvent(seq, data, fields_of(tuple(row)), link)


def fields_of(row: tuple[Any, ...]) -> dict[str, Any]:
    """An event row's fields by name, as the receipt checker compares them.

    An ``invalid`` event's detail (row, column, reason) is spread into the
    fields; identity columns an ``outcome`` event leaves empty are left out.
    """
    fields = dict(zip(COLUMNS, row, strict=True))
    kind = fields["kind"]
    if kind == ledger_mod.Kind.OUTCOME:
        for name in _IDENTITY:
            if fields[name] is None:
                del fields[name]
    elif kind == ledger_mod.Kind.INVALID:
        invalid = loads(InvalidDetail, fields["detail"])
        fields["row"] = invalid.row
        fields["column"] = invalid.column or ""
        fields["reason"] = invalid.reason
    return fields
