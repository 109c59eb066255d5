"""``erasure lookup``: the keys under which the ledger may know one identifier.

The identifier is normalised by the same rules as the intake and keyed with
the ledger key; the ledger is then asked about the key, so the answer never
needs the identifier to be stored anywhere.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from erasure.errors import UsageError
from erasure.intake import normalize
from erasure.job import Job
from erasure.keys import Keyer, message_prefix

if TYPE_CHECKING:
    import polars as pl


def keys_for(
    job: Job,
    keyer: Keyer,
    matching: str,
    raw: str,
    *,
    db_id: int | None = None,
    resource_id: int | None = None,
) -> list[str]:
    """Every key ``raw`` may have been recorded under for this job.

    ``db_id`` and ``resource_id`` default to the job's; a job whose database
    comes from a column needs ``--db-id``. Custom values are looked up under
    every custom field the job maps.
    """
    db = db_id if db_id is not None else job.input.db_id
    if db is None:
        raise UsageError("this job reads db_id from a column: pass --db-id N")
    try:
        if matching == "email":
            value = normalize.email(raw)
        elif matching == "phone":
            value = normalize.phone(raw, job.input.phone_region)
        else:
            value = normalize.text(raw)
    except normalize.Invalid as exc:
        raise UsageError(
            f"the {matching.replace('_', ' ')} given is not usable: {exc.reason}"
        ) from None
    if matching in ("email", "phone"):
        rid = resource_id if resource_id is not None else job.input.resource_id
        return [keyer.key(db, matching, rid, None, value)]
    if matching == "profile_id":
        return [keyer.key(db, matching, None, None, value)]
    fields = [c.field_name for c in job.input.columns.custom]
    if not fields:
        raise UsageError("this job maps no custom field ([input.columns] custom)")
    return [keyer.keys(message_prefix(db, "custom", None, f), [value])[0] for f in fields]


def answer(db: sqlite3.Connection, keys: list[str], keyer: Keyer) -> pl.DataFrame:
    """The pairs of ``keys`` (erasure.status.lookup), once the events bear out the outcomes
    the derived state cites for them (erasure.ledger.finality: 78 if not)."""
    from erasure import status as status_mod
    from erasure.ledger import finality

    rows = status_mod.lookup(db, keys)
    finality.check_keys(db, keys, keyer)
    return rows
