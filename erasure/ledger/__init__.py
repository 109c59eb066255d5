"""The ledger: one SQLite file, append-only, each event chained by a keyed hash.

Modules, one concept each:

==========  ==============================================================
events      kinds, outcomes, the event tuple and its canonical bytes (pure)
store       the writer: schema, lock, append (both chains, one transaction)
state       derived state: tables kept by triggers, replay, compare, hash
read        the reads the commands make (derived state only; refuses unmigrated)
verify      the chains, the structure and the derived state
archive     moving old runs' events to a sealed archive file
migrate     building the derived state of an older ledger, once
==========  ==============================================================

Event kinds, a closed set (:class:`Kind`); each event's ``link`` is
HMAC(chain key, previous link, canonical content), and the plain chain
beside it is SHA-256 (erasure.receipts.canonical).
"""

from erasure.ledger.events import (
    COLUMNS,
    FINAL,
    GENESIS,
    SCHEMA_VERSION,
    Event,
    Kind,
    Outcome,
    canonical_of,
    canonical_v1,
    now_iso,
)
from erasure.ledger.read import (
    doubtful_keys,
    finished_pairs,
    frame,
    open_events,
    open_readonly,
    read_meta,
)
from erasure.ledger.store import Ledger, check_meta, max_pages_from_env
from erasure.ledger.verify import ChainCheck, verify

__all__ = [
    "COLUMNS",
    "FINAL",
    "GENESIS",
    "SCHEMA_VERSION",
    "ChainCheck",
    "Event",
    "Kind",
    "Ledger",
    "Outcome",
    "canonical_of",
    "canonical_v1",
    "check_meta",
    "doubtful_keys",
    "finished_pairs",
    "frame",
    "max_pages_from_env",
    "now_iso",
    "open_events",
    "open_readonly",
    "read_meta",
    "verify",
]
