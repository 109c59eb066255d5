"""The job file: TOML in, a frozen and checked :class:`Job` out.

Every key of the contract is known here with its default; an unknown key, a
wrong type or a bad value is a :class:`~erasure.errors.ConfigError` naming the
key. Relative paths resolve against the job file's own folder. Secrets (the
API token, the ledger key) are not read here: :meth:`Job.token` and
:meth:`Job.keyer` read them on demand, so that commands that need neither
never ask for them. A secret file that others may read is refused (78), as
ssh refuses such keys (:func:`erasure.files.read_secret`).

``[ledger] group`` is resolved here (an unknown group is 78): :attr:`Job.perms`
is what every file the tool writes is created with.

Longer than most modules: every key of the job file with its check, a flat
list of short sections, so that the whole schema reads in one place.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import sqlite3
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from erasure import deadlines, keys
from erasure.after.keep import Notify, Suppress, parse_notify, parse_suppress
from erasure.errors import ConfigError, FileMissing, SecretMissing
from erasure.files import OWNER_ONLY, Perms, read_secret

Matching = Literal["email", "phone", "profile_id", "custom"]
MATCHINGS: tuple[Matching, ...] = ("email", "phone", "profile_id", "custom")
ApiFormat = Literal["json", "xml"]

DEFAULT_TOKEN_ENV = "ALTCRAFT_TOKEN"
DEFAULT_KEY_ENV = "ERASURE_LEDGER_KEY"
MIN_LEDGER_KEY_LENGTH = 16  # characters; a shorter key is too easy to guess
# (we recommend 32 random bytes: erasure.keys.new_ledger_key)


@dataclass(frozen=True, slots=True)
class Codes:
    """Which Altcraft ``error`` codes mean what (``[api.codes]``)."""

    not_found: frozenset[int] = frozenset({404})
    token: frozenset[int] = frozenset({401, 403})
    unavailable: frozenset[int] = frozenset({402})


@dataclass(frozen=True, slots=True)
class Api:
    base_url: str
    token_env: str | None = DEFAULT_TOKEN_ENV
    token_file: Path | None = None
    format: ApiFormat = "json"
    timeout_s: float = 10.0  # seconds, per request
    ca_bundle: Path | None = None
    codes: Codes = field(default_factory=Codes)


@dataclass(frozen=True, slots=True)
class CustomColumn:
    column: str
    field_name: str


@dataclass(frozen=True, slots=True)
class Columns:
    """Identifier columns of the input file; ``None`` for a mode not mapped."""

    email: str | None = None
    phone: str | None = None
    profile_id: str | None = None
    custom: tuple[CustomColumn, ...] = ()
    explicit: bool = False  # False: the contract's default names, any case


@dataclass(frozen=True, slots=True)
class Input:
    path: Path | None
    db_id: int | None = None
    db_id_column: str | None = None
    resource_id: int | None = None
    resource_id_column: str | None = None
    request_id_column: str | None = None
    received_at_column: str | None = None
    deadline_days: int = 30
    phone_region: str = "RU"
    columns: Columns = field(default_factory=Columns)
    # deadline, extension_max, timezone, calendar (erasure.deadlines; deadline_days is its "N days")
    deadline: deadlines.Rule = field(default_factory=deadlines.Rule)


@dataclass(frozen=True, slots=True)
class Run:
    concurrency: int = 16
    # requests per second, a ceiling never exceeded; or "auto": the run finds
    # the service's limit, never above max_rate_per_s
    rate_per_s: float | Literal["auto"] = 20.0
    max_rate_per_s: float | None = (
        None  # requests per second; set exactly when rate_per_s is "auto"
    )
    max_attempts: int = 8  # requests per identifier per run
    retry_after_cap_s: float = 300.0  # seconds
    preflight: bool = True

    @property
    def auto_rate(self) -> bool:
        """True when the run finds its rate (``rate_per_s = "auto"``)."""
        return self.rate_per_s == "auto"

    @property
    def ceiling_per_s(self) -> float:
        """Requests per second never exceeded: ``rate_per_s``, or ``max_rate_per_s`` under auto."""
        if self.rate_per_s == "auto":
            assert self.max_rate_per_s is not None  # parse() requires it
            return self.max_rate_per_s
        return self.rate_per_s


@dataclass(frozen=True, slots=True)
class Ledger:
    path: Path
    key_env: str | None = DEFAULT_KEY_ENV
    key_file: Path | None = None  # a ledger key, or an identifier key (erasure.keys)
    # Files the tool writes: 0600, or 0640 for the group [ledger] group names.
    perms: Perms = OWNER_ONLY


@dataclass(frozen=True, slots=True)
class Receipts:
    """``[receipts]``: who signs ``erasure receipt``'s receipts, and with which key."""

    issuer: str  # printed on every receipt
    signing_key_file: Path | None = None  # PEM from `erasure keygen`, owner-only
    signing_key_env: str | None = None  # or a variable holding that PEM


@dataclass(frozen=True, slots=True)
class Sweep:
    """``[sweep]``: how to read an Altcraft export for ``erasure sweep``."""

    db_id: int  # the database the export was taken from
    profile_id_column: str = "_id"
    columns: Columns = field(default_factory=Columns)  # identifier columns, as [input.columns]


@dataclass(frozen=True, slots=True)
class Job:
    """A checked job file. Paths are absolute."""

    path: Path
    api: Api
    input: Input
    run: Run
    ledger: Ledger
    receipts: Receipts | None = None  # [receipts], when the job has it
    sweep: Sweep | None = None  # [sweep], when the job has it
    suppress: Suppress | None = None  # [suppress] (erasure.after.keep), off when absent
    notify: Notify | None = None  # [notify] (erasure.after.keep), off when absent

    @property
    def perms(self) -> Perms:
        """What every file the tool writes for this job is created with."""
        return self.ledger.perms

    def token(self, environ: Mapping[str, str] | None = None) -> str:
        """The API token, from ``token_env`` or ``token_file``."""
        return self._secret("api", "token", self.api.token_env, self.api.token_file, environ)

    def keyer(
        self,
        role: keys.Role = keys.Role.CHAIN,
        environ: Mapping[str, str] | None = None,
        *,
        command: str = "this command",
    ) -> keys.Keyer:
        """The :class:`~erasure.keys.Keyer` for this job's ledger, able to serve ``role``.

        The key comes from ``key_env`` or ``key_file``: a ledger key, or an
        identifier key (enough for :attr:`~erasure.keys.Role.IDENTIFIER`).
        Its derivation is the one the ledger records (an older ledger keeps
        its own), or the newest for a ledger not yet written. Raises
        :class:`SecretMissing` or :class:`ConfigError` (78) naming the key's
        source, and ``command`` when an identifier key is given for the chain.
        """
        text, source = self._ledger_secret(environ)
        derivation = ledger_derivation(self.ledger.path) or keys.DERIVATION_VERSION
        keyer = keys.keyer_from_text(text, derivation=derivation, source=source)
        keyer.require(role, command)
        return keyer

    def ledger_key(self, environ: Mapping[str, str] | None = None) -> bytes:
        """The ledger key itself (not an identifier key), from ``key_env`` or ``key_file``.

        Prefer :meth:`keyer`, which also picks the ledger's derivation.
        """
        text, source = self._ledger_secret(environ)
        if keys.is_identifier_key(text):
            keys.keyer_from_text(text, source=source).require(keys.Role.CHAIN)
        return text.encode()

    def _ledger_secret(self, environ: Mapping[str, str] | None) -> tuple[str, str]:
        """The ledger key's text and words naming where it came from."""
        led = self.ledger
        key = self._secret("ledger", "key", led.key_env, led.key_file, environ)
        where = f"ledger key file {led.key_file}" if led.key_file else f"variable {led.key_env}"
        if not keys.is_identifier_key(key) and len(key) < MIN_LEDGER_KEY_LENGTH:
            raise SecretMissing(
                f"ledger key from {where} is too short: "
                f"at least {MIN_LEDGER_KEY_LENGTH} characters are needed "
                f"(we recommend {keys.LEDGER_KEY_BYTES} random bytes, 64 hex digits)"
            )
        return key, where

    def _secret(
        self,
        section: str,
        what: str,
        env: str | None,
        file: Path | None,
        environ: Mapping[str, str] | None,
    ) -> str:
        if file is not None:
            return read_secret(file, f"{section} {what} file", self.perms)
        environ = os.environ if environ is None else environ
        assert env is not None
        value = environ.get(env, "")
        if not value:
            raise SecretMissing(
                f"{section} {what} is missing: set the environment variable {env}"
                f" (named by [{section}] {what}_env)"
            )
        return value

    def settings(self) -> dict[str, Any]:
        """The settings without secrets, for the ledger and the report."""
        return {
            "base_url": self.api.base_url,
            "format": self.api.format,
            "timeout_s": self.api.timeout_s,
            "codes": {
                "not_found": sorted(self.api.codes.not_found),
                "token": sorted(self.api.codes.token),
                "unavailable": sorted(self.api.codes.unavailable),
            },
            "db_id": self.input.db_id,
            "db_id_column": self.input.db_id_column,
            "resource_id": self.input.resource_id,
            "resource_id_column": self.input.resource_id_column,
            "request_id_column": self.input.request_id_column,
            "received_at_column": self.input.received_at_column,
            "deadline_days": self.input.deadline_days,
            **self.input.deadline.settings(),
            "phone_region": self.input.phone_region,
            "concurrency": self.run.concurrency,
            "rate_per_s": self.run.rate_per_s,
            "max_rate_per_s": self.run.max_rate_per_s,
            "max_attempts": self.run.max_attempts,
            "retry_after_cap_s": self.run.retry_after_cap_s,
            "preflight": self.run.preflight,
        }


def ledger_derivation(path: Path) -> str | None:
    """The key derivation a ledger records, or None when there is no ledger yet.

    Read without the ledger module (no polars) and read-only; a file that
    cannot be read as a ledger answers None, and the ledger's own checks
    then say what is wrong with it.
    """
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'derivation'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return str(row[0]) if row else None


# ---------------------------------------------------------------- parsing


class _Section:
    """Reads one table of the TOML file, remembering which keys were used."""

    def __init__(self, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"job file: [{name}] must be a table")
        self.name = name
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.name}.{key}"

    def get(self, key: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int in Python; never accept it where a number is asked
        if isinstance(value, bool) and bool not in _as_tuple(kinds):
            raise ConfigError(f"job file: {self.where(key)} must be {_kind_names(kinds)}")
        if not isinstance(value, kinds):
            raise ConfigError(f"job file: {self.where(key)} must be {_kind_names(kinds)}")
        return value

    def table(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(self.where(key), self.data.get(key, {}))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"job file: unknown key {self.where(unknown[0])}")


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kinds))


def _deadline_rule(in_s: _Section) -> deadlines.Rule:
    """[input] deadline, extension_max, timezone, calendar (and deadline_days) as one rule."""
    given_days = in_s.get("deadline_days", int, None)
    try:
        return deadlines.rule(
            in_s.get("deadline", str, None),
            deadline_days=given_days,
            extension_max=in_s.get("extension_max", str, None),
            timezone=in_s.get("timezone", str, None),
            calendar=in_s.get("calendar", str, None),
        )
    except deadlines.DeadlineError as exc:
        raise ConfigError(f"job file: [input] {exc}") from None


def _positive(section: _Section, key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"job file: {section.where(key)} must be greater than 0")


def _rates(section: _Section) -> tuple[float | Literal["auto"], float | None]:
    """``rate_per_s`` (a number or "auto"), ``max_rate_per_s`` (with "auto", and only then)."""
    section.used.add("rate_per_s")
    raw = section.data.get("rate_per_s", 20)
    top = section.get("max_rate_per_s", (int, float), None)
    # bool is an int in Python: true is no rate
    if isinstance(raw, bool) or (not isinstance(raw, (int, float)) and raw != "auto"):
        raise ConfigError(f'job file: {section.where("rate_per_s")} must be a number or "auto"')
    if raw == "auto":
        if top is None:
            raise ConfigError(
                f"job file: {section.where('max_rate_per_s')} is required with "
                f'rate_per_s = "auto" (the rate the run never exceeds while it finds the limit)'
            )
        return "auto", _rate(section, "max_rate_per_s", top)
    if top is not None:
        raise ConfigError(
            f"job file: {section.where('max_rate_per_s')} is only used with "
            'rate_per_s = "auto"; a number rate_per_s is itself the ceiling'
        )
    return _rate(section, "rate_per_s", raw), None


def _rate(section: _Section, key: str, value: float) -> float:
    # TOML has inf and nan: neither is a rate the limiter can keep
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"job file: {section.where(key)} must be a finite number greater than 0")
    return float(value)


def _path(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else (base / p)))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("job file: api.base_url must be an http(s) URL such as https://host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "job file: api.base_url uses http:// for a host that is not loopback; use https://"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            "job file: api.base_url must not carry a query, fragment or credentials"
            " (the token belongs in token_env or token_file)"
        )
    return url.rstrip("/")


def _codes(section: _Section) -> Codes:
    defaults = Codes()
    found: dict[str, frozenset[int]] = {}
    for name in ("not_found", "token", "unavailable"):
        value = section.get(name, list, None)
        if value is None:
            found[name] = getattr(defaults, name)
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"job file: {section.where(name)} must be a list of integers")
        if 0 in value:
            raise ConfigError(f"job file: {section.where(name)} must not contain 0 (success)")
        found[name] = frozenset(value)
    section.done()
    seen: dict[int, str] = {}
    for name, values in found.items():
        for v in sorted(values):
            if v in seen:
                raise ConfigError(
                    f"job file: code {v} is in both api.codes.{seen[v]} and api.codes.{name}"
                )
            seen[v] = name
    return Codes(**found)


def _secret_source(
    section: _Section, what: str, base: Path, default_env: str
) -> tuple[str | None, Path | None]:
    env = section.get(f"{what}_env", str, None)
    file = section.get(f"{what}_file", str, None)
    if env is not None and file is not None:
        raise ConfigError(
            f"job file: {section.where(what + '_env')} and {section.where(what + '_file')}"
            " are both set; keep one"
        )
    if file is not None:
        return None, _path(base, file)
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError(f"job file: {section.where(what + '_env')} is not a variable name")
    return env or default_env, None


def _columns(section: _Section) -> Columns:
    if not section.data:
        section.done()
        return Columns()
    email = section.get("email", str, None)
    phone = section.get("phone", str, None)
    profile_id = section.get("profile_id", str, None)
    raw_custom = section.get("custom", (dict, list), None)
    customs: list[CustomColumn] = []
    items = [raw_custom] if isinstance(raw_custom, dict) else (raw_custom or [])
    for i, item in enumerate(items):
        sub = _Section(
            f"{section.where('custom')}[{i}]" if len(items) > 1 else section.where("custom"), item
        )
        column = sub.get("column", str, None)
        field_name = sub.get("field_name", str, None)
        sub.done()
        if not column or not field_name:
            raise ConfigError(f"job file: {sub.name} needs both column and field_name")
        customs.append(CustomColumn(column=column, field_name=field_name))
    section.done()
    if not (email or phone or profile_id or customs):
        raise ConfigError("job file: [input.columns] maps no identifier column")
    return Columns(email, phone, profile_id, tuple(customs), explicit=True)


def parse(text: str, path: Path) -> Job:
    """Parse a job file's text; ``path`` is where it lives (for relative paths)."""
    base = path.parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from None
    top = _Section("job", data)
    top.name = ""

    def sub(name: str) -> _Section:
        top.used.add(name)
        return _Section(name, data.get(name, {}))

    api_s = sub("api")
    base_url = api_s.get("base_url", str, None)
    if base_url is None:
        raise ConfigError("job file: api.base_url is required")
    token_env, token_file = _secret_source(api_s, "token", base, DEFAULT_TOKEN_ENV)
    fmt = api_s.get("format", str, "json")
    if fmt not in ("json", "xml"):
        raise ConfigError('job file: api.format must be "json" or "xml"')
    timeout_s = float(api_s.get("timeout_s", (int, float), 10))
    _positive(api_s, "timeout_s", timeout_s)
    ca_bundle = _path(base, api_s.get("ca_bundle", str, None))
    codes = _codes(api_s.table("codes"))
    api_s.done()
    api = Api(
        base_url=_check_base_url(base_url),
        token_env=token_env,
        token_file=token_file,
        format=fmt,
        timeout_s=timeout_s,
        ca_bundle=ca_bundle,
        codes=codes,
    )

    in_s = sub("input")
    db_id = in_s.get("db_id", int, None)
    db_id_column = in_s.get("db_id_column", str, None)
    if (db_id is None) == (db_id_column is None):
        raise ConfigError("job file: [input] needs exactly one of db_id and db_id_column")
    resource_id = in_s.get("resource_id", int, None)
    resource_id_column = in_s.get("resource_id_column", str, None)
    if resource_id is not None and resource_id_column is not None:
        raise ConfigError("job file: [input] has both resource_id and resource_id_column")
    deadline_days = in_s.get("deadline_days", int, 30)
    _positive(in_s, "deadline_days", deadline_days)
    rule = _deadline_rule(in_s)
    region = in_s.get("phone_region", str, "RU").upper()
    import phonenumbers  # a large table; only loaded when a job is read

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"job file: input.phone_region {region!r} is not a region code")
    inp = Input(
        path=_path(base, in_s.get("path", str, None)),
        db_id=db_id,
        db_id_column=db_id_column,
        resource_id=resource_id,
        resource_id_column=resource_id_column,
        request_id_column=in_s.get("request_id_column", str, None),
        received_at_column=in_s.get("received_at_column", str, None),
        deadline_days=deadline_days,
        phone_region=region,
        columns=_columns(in_s.table("columns")),
        deadline=rule,
    )
    in_s.done()

    run_s = sub("run")
    rate_per_s, max_rate_per_s = _rates(run_s)
    run = Run(
        concurrency=run_s.get("concurrency", int, 16),
        rate_per_s=rate_per_s,
        max_rate_per_s=max_rate_per_s,
        max_attempts=run_s.get("max_attempts", int, 8),
        retry_after_cap_s=float(run_s.get("retry_after_cap_s", (int, float), 300)),
        preflight=run_s.get("preflight", bool, True),
    )
    for key in ("concurrency", "max_attempts"):
        _positive(run_s, key, getattr(run, key))
    _positive(run_s, "retry_after_cap_s", run.retry_after_cap_s, allow_zero=True)
    run_s.done()

    led_s = sub("ledger")
    key_env, key_file = _secret_source(led_s, "key", base, DEFAULT_KEY_ENV)
    ledger_path = _path(base, led_s.get("path", str, "ledger.sqlite"))
    assert ledger_path is not None
    group = led_s.get("group", str, None)
    if group is not None and not group.strip():
        raise ConfigError("job file: ledger.group must name a group")
    led_s.done()
    ledger = Ledger(
        path=ledger_path, key_env=key_env, key_file=key_file, perms=Perms.for_group(group)
    )

    receipts = _receipts(sub("receipts"), base) if "receipts" in data else None
    sweep = _sweep(sub("sweep")) if "sweep" in data else None
    top.used.update({"suppress", "notify"})
    suppress = parse_suppress(data["suppress"]) if "suppress" in data else None
    notify = parse_notify(data["notify"], base) if "notify" in data else None

    unknown = sorted(set(data) - top.used)
    if unknown:
        raise ConfigError(f"job file: unknown section or key {unknown[0]}")
    return Job(
        path=path,
        api=api,
        input=inp,
        run=run,
        ledger=ledger,
        receipts=receipts,
        sweep=sweep,
        suppress=suppress,
        notify=notify,
    )


def _receipts(section: _Section, base: Path) -> Receipts:
    env = section.get("signing_key_env", str, None)
    file = section.get("signing_key_file", str, None)
    issuer = section.get("issuer", str, None)
    section.done()
    if (env is None) == (file is None):
        raise ConfigError(
            "job file: [receipts] needs exactly one of signing_key_file and signing_key_env"
        )
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError("job file: receipts.signing_key_env is not a variable name")
    if issuer is None or not issuer.strip():
        raise ConfigError("job file: receipts.issuer is required (it is printed on every receipt)")
    return Receipts(issuer=issuer.strip(), signing_key_file=_path(base, file), signing_key_env=env)


def _sweep(section: _Section) -> Sweep:
    db_id = section.get("db_id", int, None)
    if db_id is None:
        raise ConfigError("job file: sweep.db_id is required (the database exported)")
    _positive(section, "db_id", db_id)
    profile_id_column = section.get("profile_id_column", str, "_id")
    columns = _columns(section.table("columns"))
    section.done()
    if not profile_id_column.strip():
        raise ConfigError("job file: sweep.profile_id_column must name a column")
    if not columns.explicit:
        # as an Altcraft export names them
        columns = Columns(email="email", phone="phone", explicit=True)
    return Sweep(db_id=db_id, profile_id_column=profile_id_column, columns=columns)


def load(path: str | os.PathLike[str]) -> Job:
    """Read and check the job file at ``path``."""
    p = Path(path).expanduser().absolute()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FileMissing(f"job file {p} does not exist") from None
    except IsADirectoryError:
        raise FileMissing(f"job file {p} is a directory") from None
    except OSError as exc:
        raise FileMissing(f"job file {p} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"job file {p} is not UTF-8 text") from None
    return parse(text, p)
