"""Shared pieces for the receipt tests: a fixed key, and a real ledger to cite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from erasure import ledger as L
from erasure.keys import Keyer
from erasure.receipts import (
    PLAIN_GENESIS,
    ChainHeads,
    Claim,
    LedgerEvent,
    Receipt,
    Request,
    format_head,
    make_receipt,
    plain_link,
)
from tests.ledger_details import FINISHED, STARTED

# RFC 8032's first test key: a fixed key gives fixed signatures (Ed25519 is deterministic)
FIXED_KEY = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
COLUMNS = ("seq", "at", *L.Event._fields, "link")


def ledger_events(path: Path, stored: Sequence[str] | None = None) -> list[LedgerEvent]:
    """The ledger's events as the checker reads them, with the plain chain recomputed.

    The ledger does not store plain links yet (the ledger's own change adds
    them); here they are recomputed from the rows as they are now, as a
    forger who rewrote events would, unless ``stored`` gives links kept
    from before.
    """
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY seq").fetchall()
    out, link = [], PLAIN_GENESIS
    for i, row in enumerate(rows):
        seq, at, *values, _keyed = row
        data = L.canonical_v1(seq, at, values)
        link = plain_link(link, data)
        keep = stored[i] if stored is not None and i < len(stored) else link
        out.append(LedgerEvent(seq, data, dict(zip(COLUMNS, row, strict=True)), keep))
    return out


def write_ledger(path: Path, keyer: Keyer, keys: Sequence[str], outcomes: Sequence[str]) -> None:
    """A real ledger: request T-1 names ``keys`` with ``outcomes``; T-2 one more key."""
    with L.Ledger(path, keyer) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail=STARTED)])
        for key in (*keys, "e" * 32):
            rid = "T-2" if key == "e" * 32 else "T-1"
            led.append(
                [
                    L.Event(L.Kind.PLANNED, 1, key=key, request_id=rid, db_id=1, matching="email"),
                    L.Event(L.Kind.SENT, 1, key=key, attempt=1),
                ]
            )
        for key, outcome in zip((*keys, "e" * 32), (*outcomes, "erased"), strict=True):
            rid = "T-2" if key == "e" * 32 else "T-1"
            led.append(
                [
                    L.Event(
                        L.Kind.OUTCOME,
                        1,
                        key=key,
                        request_id=rid,
                        db_id=1,
                        matching="email",
                        attempt=1,
                        outcome=outcome,
                        in_doubt=0,
                        profile_id=f"p-{key[:4]}" if outcome == "erased" else None,
                        error_code=0,
                    )
                ]
            )
        led.append([L.Event(L.Kind.RUN_FINISHED, 1, detail=FINISHED)])


def receipt_from_ledger(path: Path, keyer: Keyer, request_id: str = "T-1") -> Receipt:
    """A receipt for one request, built from the ledger as ``erasure receipt`` will."""
    events = ledger_events(path)
    last: dict[str, Claim] = {}
    for ev in events:
        f = ev.fields
        if f["request_id"] != request_id or f["kind"] not in ("planned", "outcome"):
            continue
        if f["kind"] == "planned" and f["key"] not in last:
            last[f["key"]] = Claim(ev.seq, f["db_id"], f["matching"], f["key"], L.Outcome.PENDING,
                                   False)  # fmt: skip
        elif f["kind"] == "outcome":
            last[f["key"]] = Claim(
                ev.seq, f["db_id"], f["matching"], f["key"], L.Outcome(f["outcome"]),
                bool(f["in_doubt"]), f["profile_id"], f["at"],
            )  # fmt: skip
    verdict = L.verify(path, keyer)
    assert verdict.ok
    heads = ChainHeads(
        format_head(verdict.head_seq, verdict.head_link),
        format_head(events[-1].seq, events[-1].plain_link),
    )
    return make_receipt(
        Request(request_id, "2024-05-01", "2024-05-31"),
        list(last.values()),
        [],
        heads,
        "ACME LLC, DPO office",
    )
