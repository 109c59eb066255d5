"""The sandbox's admin calls beside the config: export, restore a backup, re-import.

Routes (JSON in and out; a bad call answers 400 ``{"error": "..."}``, an
unknown database 404 ``{"error": "..."}``)::

    GET  /__sandbox/export?db_id=N   the live profiles of database N as CSV (text/csv,
                                     UTF-8), as an Altcraft export: _id, email, phone,
                                     then every custom field of that database, sorted
    POST /__sandbox/restore          {"profile_ids": ["..."]} and/or {"last": N}, optional
                                     "db_id": deleted profiles come back with the same
                                     ids and values; answers {"restored": ["id", ...]}
    POST /__sandbox/import           {"db_id": N, "email": "...", "phone": "...",
                                     "fields": {...}, "resources": [..]}: a NEW profile
                                     (a new id); answers {"profile_id": "..."}

Restored and imported profiles are live again for deletes, exports and stats.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from urllib.parse import parse_qs

from erasure.sandbox.stats import Stats
from erasure.sandbox.store import Store

EXPORT_PATH = "/__sandbox/export"
RESTORE_PATH = "/__sandbox/restore"
IMPORT_PATH = "/__sandbox/import"
FIXED = ("_id", "email", "phone")  # the export's first columns


class AdminError(ValueError):
    """A bad admin call: ``status`` (400 or 404) and a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def export_csv(store: Store, db_id: int) -> bytes:
    """The live profiles of ``db_id`` as an Altcraft-shaped CSV (see the module)."""
    if db_id not in store.databases:
        raise AdminError(f"database {db_id} does not exist", 404)
    names = store.field_names(db_id)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED, *names])
    for profile in store.live(db_id):
        fields = profile.fields
        writer.writerow(
            [profile.profile_id, profile.email, profile.phone, *(fields.get(n, "") for n in names)]
        )
    return out.getvalue().encode()


def export_db_id(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin-1")).get("db_id", [])
    if len(values) != 1 or not values[0].strip().isdigit():
        raise AdminError("the export needs ?db_id=N (one integer)")
    return int(values[0])


def restore(store: Store, stats: Stats, body: bytes) -> bytes:
    """Handle ``POST /__sandbox/restore``; the answer's body."""
    call = _object(body)
    ids = call.get("profile_ids", [])
    last = call.get("last", 0)
    db_id = call.get("db_id")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise AdminError("profile_ids must be a list of strings")
    if isinstance(last, bool) or not isinstance(last, int) or last < 0:
        raise AdminError("last must be an integer >= 0")
    if db_id is not None and (isinstance(db_id, bool) or not isinstance(db_id, int)):
        raise AdminError("db_id must be an integer")
    if not ids and not last:
        raise AdminError("name profile_ids or a number of the last deleted")
    try:
        restored = store.restore(ids, last=last, db_id=db_id)
    except KeyError as exc:
        raise AdminError(str(exc.args[0])) from None
    stats.restored += len(restored)
    return json.dumps({"restored": [p.profile_id for p in restored]}).encode()


def reimport(store: Store, stats: Stats, body: bytes) -> bytes:
    """Handle ``POST /__sandbox/import``; the answer's body."""
    call = _object(body)
    unknown = sorted(set(call) - {"db_id", "email", "phone", "fields", "resources"})
    if unknown:
        raise AdminError(f"unknown key {unknown[0]!r}")
    db_id = call.get("db_id", 1)
    email, phone = call.get("email", ""), call.get("phone", "")
    fields = call.get("fields", {})
    resources = call.get("resources", [])
    if isinstance(db_id, bool) or not isinstance(db_id, int):
        raise AdminError("db_id must be an integer")
    if not isinstance(email, str) or not isinstance(phone, str) or not (email or phone):
        raise AdminError("give an email or a phone (strings)")
    if not isinstance(fields, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise AdminError("fields must map names to strings")
    if not isinstance(resources, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in resources
    ):
        raise AdminError("resources must be a list of integers")
    profile = store.reimport(db_id, email=email, phone=phone, resources=resources, fields=fields)
    stats.imported += 1
    return json.dumps({"profile_id": profile.profile_id}).encode()


def _object(body: bytes) -> dict[str, object]:
    try:
        call = json.loads(body or b"{}")
    except ValueError:
        raise AdminError("the body is not JSON") from None
    if not isinstance(call, dict):
        raise AdminError("the body must be a JSON object")
    return call
