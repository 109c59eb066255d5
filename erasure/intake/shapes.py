"""The intake's results: items, invalid records and counts, their schemas and reason codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ITEMS_SCHEMA = pl.Schema(
    [
        ("request_id", pl.String()),
        ("key", pl.String()),  # Keyer: 32 hex
        ("db_id", pl.Int64()),
        ("matching", pl.String()),  # email | phone | profile_id | custom
        ("resource_id", pl.Int64()),  # email and phone only
        ("field_name", pl.String()),  # custom only
        ("value", pl.String()),  # normalised: what is sent
        ("value_is_int", pl.Boolean()),  # custom only: send as a JSON integer
        ("received_at", pl.Datetime("us", "UTC")),
        ("row", pl.Int64()),  # of the first occurrence
    ]
)
INVALID_SCHEMA = pl.Schema(
    [
        ("row", pl.Int64()),  # as a spreadsheet numbers it
        ("column", pl.String()),  # the user's own header; null for no_identifier
        ("reason", pl.String()),  # a code: Reason
        ("words", pl.String()),  # plain words and the fix; never the cell's value
        ("value", pl.String()),  # the raw cell: for a --rejects file only, never the ledger
        ("request_id", pl.String()),
        ("db_id", pl.Int64()),
        # the request's earliest usable received_at (erasure.intake.received): a request
        # with no usable identifier keeps its deadline through its invalid records
        ("received_at", pl.Datetime("us", "UTC")),
    ]
)
USABLE_SCHEMA = pl.Schema(
    [("request_id", pl.String()), ("column", pl.String()), ("row", pl.Int64())]
)
REPAIRS_SCHEMA = pl.Schema(
    [
        ("row", pl.Int64()),  # as a spreadsheet numbers it
        ("column", pl.String()),  # the user's own header
        ("kind", pl.String()),  # erasure.intake.repair.Repair: mailto, display_name, ...
    ]
)
# a --rejects file's columns: where, the ticket, the header, why (a code), the raw cell,
# and the words that say what to fix
REJECTS_COLUMNS = ("row", "request_id", "column", "reason", "value", "words")
REJECT_VALUE_MAX = 200  # characters of a rejected cell kept in the rejects file


class Reason(enum.StrEnum):
    """Why an input cell or row could not be used: a closed set (an ``invalid`` record's code)."""

    EMAIL_INVALID = "email_invalid"
    PHONE_INVALID = "phone_invalid"
    PROFILE_ID_INVALID = "profile_id_invalid"
    CUSTOM_INVALID = "custom_invalid"
    # A number Excel turned into 7,9E+10: the digits are lost.
    EXCEL_SCIENTIFIC = "excel_scientific"
    # No identifier in any mapped column: the request cannot be erased from this row.
    NO_IDENTIFIER = "no_identifier"
    DB_ID_INVALID = "db_id_invalid"
    RESOURCE_ID_INVALID = "resource_id_invalid"
    # The row's identifiers are kept, without a deadline.
    RECEIVED_AT_INVALID = "received_at_invalid"
    # OpenDSR (erasure.intake.opendsr): a request of another type (access, portability);
    # nothing of it is sent.
    NOT_AN_ERASURE = "not_an_erasure"
    # OpenDSR: an identity given as a hash (sha256, md5, sha1): Altcraft needs the address.
    HASHED_IDENTITY = "hashed_identity"
    # An email cell naming two or more different addresses (the second may be a CC or a
    # relative who never asked); [input] split_addresses = true erases each instead.
    SEVERAL_ADDRESSES = "several_addresses"


@dataclass(frozen=True, slots=True)
class Counts:
    """What intake found, stage by stage (see :mod:`erasure.accounting` for the identities).

    ``rows == with_identifier + no_identifier + blank``;
    ``identifiers == valid + invalid_cells + skipped``; ``valid == pairs + duplicates``.
    """

    rows: int  # data rows read (header excluded, blank rows included)
    blank: int  # rows empty in every column the job reads: no request at all
    no_identifier: int  # rows with something, but no identifier cell: one invalid record each
    identifiers: int  # non-empty identifier cells across the mapped columns
    valid: int  # identifiers that passed validation, in rows that passed theirs
    invalid_cells: int  # identifier cells that could not be used: one invalid record each
    skipped: int  # identifier cells of rows whose db_id or resource_id is unusable
    duplicates: int  # valid identifiers whose (request id, key) was seen earlier in the file
    pairs: int  # distinct (request id, key) pairs: what a run must finish
    keys: int  # distinct keys: deletes a run sends at most
    invalid: int  # invalid records: cells, bad row values, bad dates and no_identifier rows
    requests: int  # distinct request ids named by a row (0 without a request id column)

    @property
    def with_identifier(self) -> int:
        """Rows with at least one identifier cell, usable or not."""
        return self.rows - self.blank - self.no_identifier


@dataclass(frozen=True, slots=True)
class Intake:
    path: Path
    sha256: str  # hex, of the input file's bytes
    items: pl.DataFrame  # ITEMS_SCHEMA: one row per (request_id, key), first seen first
    invalid: pl.DataFrame  # INVALID_SCHEMA, by row: the unusable cells and rows
    counts: Counts
    # (request_id, column): distinct columns that held a usable value for a request,
    # what resolves an earlier input's invalid record (no request id column: empty)
    usable: pl.DataFrame  # USABLE_SCHEMA
    header_row: int | None = None  # CSV, XLSX: the header's row number (title rows above it)
    # per request id: its earliest usable received_at and how many distinct ones its rows
    # gave (erasure.intake.received.RECEIVED_SCHEMA); None: no received_at column
    received: pl.DataFrame | None = None
    # REPAIRS_SCHEMA: cells read after a repair whose intent is certain, one row per kind
    repairs: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REPAIRS_SCHEMA))

    def repair_counts(self) -> dict[str, int]:
        """Repaired cells by kind, the kinds in order of their first row."""
        counts = self.repairs.group_by("kind", maintain_order=True).len()
        return dict(counts.iter_rows())
