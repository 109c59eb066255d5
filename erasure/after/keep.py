"""``[suppress]`` and ``[notify]``: the job sections for keeping people gone and telling others.

Self-contained (no import of :mod:`erasure.job`, which calls these): each
parser takes the section's TOML table and answers a frozen value or raises
:class:`~erasure.errors.ConfigError` (78) naming the key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from erasure.errors import ConfigError

DEFAULT_NOTIFY_SECRET_ENV = "ERASURE_NOTIFY_SECRET"
SUPPRESS_BATCH = 1000  # values per emails_add/phones_add call (Altcraft advises at most 10,000)


@dataclass(frozen=True, slots=True)
class Suppress:
    """``[suppress]``: Altcraft suppression lists for erased people's emails and phones."""

    email_list_id: int | None = None  # suppresses/emails_add's ``id``
    phone_list_id: int | None = None  # suppresses/phones_add's ``id``
    include_not_found: bool = False  # also people Altcraft did not hold (adds a record)
    batch_size: int = SUPPRESS_BATCH  # values per call


NoticeFormat = Literal["generic", "opendsr"]


@dataclass(frozen=True, slots=True)
class Notify:
    """``[notify]``: where signed notices go, with which secret, in which body."""

    url: str
    secret_env: str | None = DEFAULT_NOTIFY_SECRET_ENV
    secret_file: Path | None = None
    format: NoticeFormat = "generic"
    timeout_s: float = 10.0  # seconds per delivery attempt
    max_time_s: float = 60.0  # seconds all attempts of one notice may take, waits included
    max_attempts: int = 5  # deliveries of one notice per command


def _get(data: Mapping[str, Any], section: str, key: str, kinds: Any, default: Any) -> Any:
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ConfigError(f"job file: {section}.{key} has the wrong type")
    if not isinstance(value, kinds):
        raise ConfigError(f"job file: {section}.{key} has the wrong type")
    return value


def _known(data: Mapping[str, Any], section: str, keys: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"job file: [{section}] must be a table")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ConfigError(f"job file: unknown key {section}.{unknown[0]}")


def parse_suppress(data: Mapping[str, Any]) -> Suppress:
    _known(data, "suppress", ("email_list_id", "phone_list_id", "include_not_found", "batch_size"))
    email = _get(data, "suppress", "email_list_id", int, None)
    phone = _get(data, "suppress", "phone_list_id", int, None)
    for key, value in (("email_list_id", email), ("phone_list_id", phone)):
        if value is not None and value <= 0:
            raise ConfigError(f"job file: suppress.{key} must be a positive list id")
    if email is None and phone is None:
        raise ConfigError("job file: [suppress] needs email_list_id or phone_list_id (or both)")
    batch = _get(data, "suppress", "batch_size", int, SUPPRESS_BATCH)
    if not 1 <= batch <= 10_000:
        raise ConfigError("job file: suppress.batch_size must be between 1 and 10000")
    include = _get(data, "suppress", "include_not_found", bool, False)
    return Suppress(email, phone, include, batch)


def parse_notify(data: Mapping[str, Any], base: Path) -> Notify:
    keys = ("url", "secret_env", "secret_file", "format", "timeout_s", "max_time_s", "max_attempts")
    _known(data, "notify", keys)
    url = _get(data, "notify", "url", str, None)
    if url is None:
        raise ConfigError("job file: notify.url is required")
    _check_url(url)
    env = _get(data, "notify", "secret_env", str, None)
    file = _get(data, "notify", "secret_file", str, None)
    if env is not None and file is not None:
        raise ConfigError(
            "job file: notify.secret_env and notify.secret_file are both set; keep one"
        )
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError("job file: notify.secret_env is not a variable name")
    fmt = _get(data, "notify", "format", str, "generic")
    if fmt not in ("generic", "opendsr"):
        raise ConfigError('job file: notify.format must be "generic" or "opendsr"')
    timeout_s = float(_get(data, "notify", "timeout_s", (int, float), 10.0))
    max_time_s = float(_get(data, "notify", "max_time_s", (int, float), 60.0))
    attempts = _get(data, "notify", "max_attempts", int, 5)
    if timeout_s <= 0 or max_time_s <= 0 or attempts < 1:
        raise ConfigError(
            "job file: notify.timeout_s and max_time_s must be positive, max_attempts at least 1"
        )
    path = None
    if file is not None:
        path = Path(file).expanduser()
        path = path if path.is_absolute() else base / path
    return Notify(
        url=url,
        secret_env=None if path is not None else (env or DEFAULT_NOTIFY_SECRET_ENV),
        secret_file=path,
        format=fmt,
        timeout_s=timeout_s,
        max_time_s=max_time_s,
        max_attempts=attempts,
    )


def _check_url(url: str) -> None:
    """https, or http to a loopback host only (the secret signs what goes there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and _loopback(host):
        return
    raise ConfigError("job file: notify.url must be an https:// URL (http:// only for loopback)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
