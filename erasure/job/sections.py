"""The job file's sections, declared once: keys, defaults, meanings, checks.

Each section is a frozen dataclass read by :func:`erasure.job.schema.read`;
``finish`` holds the rules that tie several keys together.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from erasure import deadlines
from erasure.files import OWNER_ONLY, Perms
from erasure.job.schema import (
    Given,
    fail,
    finite_positive,
    internal,
    key,
    no_success,
    not_blank,
    not_negative,
    positive,
    table,
    variable_name,
)

Matching = Literal["email", "phone", "profile_id", "custom"]
MATCHINGS: tuple[Matching, ...] = ("email", "phone", "profile_id", "custom")
ApiFormat = Literal["json", "xml"]

DEFAULT_TOKEN_ENV = "ALTCRAFT_TOKEN"
DEFAULT_KEY_ENV = "ERASURE_LEDGER_KEY"

# Who reads what: the commands a section serves (a key may narrow it).
SENDING = ("run", "sweep")
INTAKE = ("validate", "run")
LEDGER = (
    "validate",
    "run",
    "status",
    "report",
    "verify",
    "archive",
    "lookup",
    "receipt",
    "screen",
    "sweep",
)


def _one_secret_source(section: object, given: Given, what: str, default_env: str) -> object:
    """``{what}_env`` or ``{what}_file``, never both; neither: the default variable."""
    env, file = f"{what}_env", f"{what}_file"
    if env in given.keys and file in given.keys:
        raise fail(f"{given.at(env)} and {given.at(file)} are both set; keep one")
    if file in given.keys:
        return dataclasses.replace(section, **{env: None})  # type: ignore[type-var]
    return section


# ---------------------------------------------------------------- [api]


@dataclasses.dataclass(frozen=True, slots=True)
class Codes:
    """``[api.codes]``: which Altcraft ``error`` codes mean what."""

    not_found: frozenset[int] = key(
        frozenset({404}),
        "nothing to erase: a final outcome (an assumption; the preflight checks it)",
        check=no_success,
        shown="[404]",
    )
    token: frozenset[int] = key(
        frozenset({401, 403}),
        "the token is refused: the run stops at once, exit 77",
        check=no_success,
        shown="[401, 403]",
    )
    unavailable: frozenset[int] = key(
        frozenset({402}),
        "the service refuses the whole run: stop, exit 69",
        check=no_success,
        shown="[402]",
    )

    def finish(self, given: Given) -> Self:
        seen: dict[int, str] = {}
        for name in ("not_found", "token", "unavailable"):
            for v in sorted(getattr(self, name)):
                if v in seen:
                    raise fail(f"code {v} is in both api.codes.{seen[v]} and api.codes.{name}")
                seen[v] = name
        return self


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's, not resolved) is loopback: where http:// may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail("api.base_url must be an http(s) URL such as https://host")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise fail("api.base_url uses http:// for a host that is not loopback; use https://")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise fail(
            "api.base_url must not carry a query, fragment or credentials"
            " (the token belongs in token_env or token_file)"
        )
    return url.rstrip("/")


@dataclasses.dataclass(frozen=True, slots=True)
class Api:
    """``[api]``: the Altcraft endpoint and how to talk to it."""

    base_url: str = key(doc="the Altcraft instance; http:// only for loopback hosts")
    token_env: str | None = key(
        DEFAULT_TOKEN_ENV, "the variable holding the API token", check=variable_name
    )
    token_file: Path | None = key(
        None, "or a file holding the token (owner-only; trailing newline stripped)"
    )
    format: ApiFormat = key("json", 'the body format: "json" or "xml"')
    timeout_s: float = key(10.0, "seconds allowed for one answer", check=positive)
    ca_bundle: Path | None = key(
        None, "a private CA's certificates (PEM); proxies come from HTTPS_PROXY"
    )
    codes: Codes = table(Codes, "which Altcraft error codes mean what")

    def finish(self, given: Given) -> Self:
        checked = dataclasses.replace(self, base_url=_check_base_url(self.base_url))
        return _one_secret_source(checked, given, "token", DEFAULT_TOKEN_ENV)  # type: ignore[return-value]


# ---------------------------------------------------------------- [input]


@dataclasses.dataclass(frozen=True, slots=True)
class CustomColumn:
    """One ``custom = { column = ..., field_name = ... }`` mapping."""

    column: str = key(doc="the file's column")
    field_name: str = key(doc="the Altcraft custom field it matches")


@dataclasses.dataclass(frozen=True, slots=True)
class Columns:
    """Identifier columns of a file; ``None`` for a mode not mapped."""

    email: str | None = key(None, "the column of email addresses", shown='"email" (any case)')
    phone: str | None = key(None, "the column of phone numbers", shown='"phone" (any case)')
    profile_id: str | None = key(
        None, "the column of Altcraft profile ids", shown='"profile_id" (any case)'
    )
    custom: tuple[CustomColumn, ...] = key(
        (), "`{ column = ..., field_name = ... }`, or a list of them", shown="none"
    )
    explicit: bool = internal(False)  # False: the contract's default names, any case

    def finish(self, given: Given) -> Self:
        if not given.keys:  # an empty table: the defaults
            return self
        if not (self.email or self.phone or self.profile_id or self.custom):
            raise fail(f"[{given.where}] maps no identifier column")
        return dataclasses.replace(self, explicit=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Input:
    """``[input]``: the file of requests and how to read it."""

    path: Path | None = key(None, "the input file (.csv .tsv .parquet .xlsx .ndjson .jsonl)")
    db_id: int | None = key(
        None,
        "the Altcraft database; or db_id_column",
        shown="none",
        commands=(*INTAKE, "lookup", "sweep"),
    )
    db_id_column: str | None = key(None, "the column naming each row's database")
    resource_id: int | None = key(
        None, "a resource id sent with email and phone matching", commands=(*INTAKE, "lookup")
    )
    resource_id_column: str | None = key(None, "or the column naming each row's resource id")
    request_id_column: str | None = key(None, "the DSR ticket's column, carried into the ledger")
    received_at_column: str | None = key(None, "when each request was received (for deadlines)")
    deadline_days: int = key(
        30,
        'days from receipt to the deadline: the rule "N days" (recorded with each run; '
        "status and report read it from the ledger)",
        check=positive,
        commands=(*INTAKE, "receipt"),
    )
    deadline: deadlines.Rule = key(
        deadlines.Rule(),
        'a preset ("gdpr", "152fz-answer", "152fz-withdrawal", "152fz-unlawful") or a rule: '
        '"30 days", "1 month", "10 working days"; not with deadline_days',
        toml=str,
        shown='"30 days"',
        commands=(*INTAKE, "extend", "receipt"),
    )
    extension_max: str | None = key(
        None,
        "for a rule that is not a preset: the longest extension (a preset brings its own)",
        commands=(*INTAKE, "extend"),
    )
    timezone: str | None = key(
        None,
        "IANA name: reads dates and times without an offset; a due day ends at midnight there",
        shown='"UTC"',
        commands=(*INTAKE, "extend", "receipt"),
    )
    calendar: str | None = key(
        None,
        "the production calendar that counts working days",
        shown='"RU"',
        commands=(*INTAKE, "extend", "receipt"),
    )
    phone_region: str = key(
        "RU",
        "the region of numbers written without a country code",
        commands=(*INTAKE, "lookup", "screen", "sweep"),
    )
    header_row: int | None = key(
        None,
        "CSV, TSV, XLSX: the header's row number (1 = the first); default: the first of "
        "the first 20 rows that names every mapped column",
        check=positive,
        shown="found",
    )
    split_addresses: bool = key(
        False,
        "true: a cell with several emails gives one identifier each; false: it is an "
        "invalid record (several_addresses)",
        commands=(*INTAKE, "screen"),
    )
    columns: Columns = table(
        Columns,
        "the identifier columns; each mapped column with a value "
        "in a row gives that row one delete",
        commands=(*INTAKE, "lookup"),
    )

    def finish(self, given: Given) -> Self:
        if (self.db_id is None) == (self.db_id_column is None):
            raise fail("[input] needs exactly one of db_id and db_id_column")
        if self.resource_id is not None and self.resource_id_column is not None:
            raise fail("[input] has both resource_id and resource_id_column")
        import phonenumbers  # a large table; only loaded when a job is read

        region = self.phone_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise fail(f"input.phone_region {self.phone_region.upper()!r} is not a region code")
        try:
            rule = deadlines.rule(
                self.deadline if "deadline" in given.keys else None,  # type: ignore[arg-type]
                deadline_days=self.deadline_days if "deadline_days" in given.keys else None,
                extension_max=self.extension_max,
                timezone=self.timezone,
                calendar=self.calendar,
            )
        except deadlines.DeadlineError as exc:
            raise fail(f"[input] {exc}") from None
        return dataclasses.replace(self, phone_region=region, deadline=rule)


# ---------------------------------------------------------------- [run]


def _rate_check(value: float | str) -> str | None:
    return None if value == "auto" else finite_positive(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """``[run]``: how fast and how often deletes are sent."""

    concurrency: int = key(16, "deletes in flight at once", check=positive)
    # deletes per second, a ceiling never exceeded; or "auto": the run finds
    # the service's limit, never above max_rate_per_s
    rate_per_s: float | Literal["auto"] = key(
        20.0,
        'deletes per second, a ceiling never exceeded; or "auto": find the service\'s limit',
        check=_rate_check,
    )
    max_rate_per_s: float | None = key(
        None,
        'required with rate_per_s = "auto" (and only then): never above this',
        check=finite_positive,
    )
    max_attempts: int = key(8, "deletes per identifier per run", check=positive)
    retry_after_cap_s: float = key(
        300.0,
        "seconds; a longer Retry-After leaves that identifier failed for this run",
        check=not_negative,
    )
    preflight: bool = key(True, "one delete of an address that cannot exist before any other")

    def finish(self, given: Given) -> Self:
        if self.rate_per_s == "auto" and self.max_rate_per_s is None:
            raise fail(
                f'{given.at("max_rate_per_s")} is required with rate_per_s = "auto" '
                "(the rate the run never exceeds while it finds the limit)"
            )
        if self.rate_per_s != "auto" and self.max_rate_per_s is not None:
            raise fail(
                f'{given.at("max_rate_per_s")} is only used with rate_per_s = "auto"; '
                "a number rate_per_s is itself the ceiling"
            )
        return self

    @property
    def auto_rate(self) -> bool:
        """True when the run finds its rate (``rate_per_s = "auto"``)."""
        return self.rate_per_s == "auto"

    @property
    def ceiling_per_s(self) -> float:
        """Deletes per second never exceeded: ``rate_per_s``, or ``max_rate_per_s`` under auto."""
        if self.rate_per_s == "auto":
            assert self.max_rate_per_s is not None  # finish() requires it
            return self.max_rate_per_s
        return self.rate_per_s


# ---------------------------------------------------------------- [ledger]


def _group_check(value: str) -> str | None:
    return None if value.strip() else "must name a group"


@dataclasses.dataclass(frozen=True, slots=True)
class Ledger:
    """``[ledger]``: where the ledger lives and its key."""

    path: Path = key(Path("ledger.sqlite"), "the ledger (SQLite)", shown='"ledger.sqlite"')
    key_env: str | None = key(
        DEFAULT_KEY_ENV, "the variable holding the ledger key", check=variable_name
    )
    key_file: Path | None = key(
        None, "or a file holding it: a ledger key, or an identifier key (lookup, screen, validate)"
    )
    group: str | None = key(
        None, "files the tool writes are 0640 for this group instead of 0600", check=_group_check
    )
    # Files the tool writes: 0600, or 0640 for the group [ledger] group names.
    perms: Perms = internal(OWNER_ONLY)

    def finish(self, given: Given) -> Self:
        done = dataclasses.replace(self, perms=Perms.for_group(self.group))
        return _one_secret_source(done, given, "key", DEFAULT_KEY_ENV)  # type: ignore[return-value]


# ---------------------------------------------------------------- [receipts]


@dataclasses.dataclass(frozen=True, slots=True)
class Receipts:
    """``[receipts]``: who signs ``erasure receipt``'s receipts, and with which key."""

    issuer: str | None = key(None, "printed on every receipt (required by receipt)", shown="none")
    signing_key_file: Path | None = key(None, "the Ed25519 key from erasure keygen (owner-only)")
    signing_key_env: str | None = key(None, "or a variable holding that PEM", check=variable_name)

    def finish(self, given: Given) -> Self:
        if "signing_key_env" in given.keys and "signing_key_file" in given.keys:
            raise fail(
                "receipts.signing_key_env and receipts.signing_key_file are both set; keep one"
            )
        issuer = self.issuer.strip() if self.issuer is not None else None
        return dataclasses.replace(self, issuer=issuer or None)

    def require(self) -> str:
        """The issuer, once the keys ``erasure receipt`` needs are known to be set (else 78)."""
        if self.signing_key_file is None and self.signing_key_env is None:
            raise fail(
                "[receipts] needs one of signing_key_file and signing_key_env "
                "(make a key with erasure keygen)"
            )
        if self.issuer is None:
            raise fail("receipts.issuer is required (it is printed on every receipt)")
        return self.issuer


# ---------------------------------------------------------------- [sweep]


@dataclasses.dataclass(frozen=True, slots=True)
class Sweep:
    """``[sweep]``: how to read an Altcraft export for ``erasure sweep``."""

    db_id: int | None = key(
        None, "the database the export was taken from", check=positive, shown="[input] db_id"
    )
    profile_id_column: str = key("_id", "the export's profile id column", check=not_blank)
    columns: Columns = table(
        Columns,
        "identifier columns, as [input.columns]; default email and phone, as Altcraft names them",
    )

    def finish(self, given: Given) -> Self:
        if not self.columns.explicit:
            # as an Altcraft export names them
            return dataclasses.replace(
                self, columns=Columns(email="email", phone="phone", explicit=True)
            )
        return self

    def database(self) -> int:
        """``db_id``, which ``erasure sweep`` needs (78 when neither it nor input.db_id is set)."""
        if self.db_id is None:
            raise fail(
                "sweep.db_id is required when [input] uses db_id_column "
                "(the database the export was taken from)"
            )
        return self.db_id


# ---------------------------------------------------------------- [screen]


@dataclasses.dataclass(frozen=True, slots=True)
class Screen:
    """``[screen]``: how to read an import file for ``erasure screen``."""

    columns: Columns = table(
        Columns,
        "identifier columns, as [input.columns] (`screen --column email=E-mail` too); default: "
        "email, phone, profile_id in any case, the header being the first row naming one",
    )
