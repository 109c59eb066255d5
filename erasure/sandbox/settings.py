"""The sandbox's switches that can change while it runs: faults and answer style.

One frozen :class:`Settings` holds them; the command line and
``POST /__sandbox/config`` fill it through the same :func:`update`, so the two
cannot drift apart: each field is a ``--dashed-name`` switch and a JSON key of
the same (underscored) name. Probabilities are drawn per delete request, in
the order of the fields below, from one generator seeded by ``--seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

ErrorStatus = Literal["200", "4xx"]

Kind = Literal[
    "probability",
    "amount",
    "optional_amount",
    "count",
    "bytes",
    "code",
    "flag",
    "codes",
    "status",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every runtime switch; all off by default (a healthy, fast service)."""

    # The service's own answers.
    error_status: ErrorStatus = "4xx"  # HTTP status of error answers: 200, or equal to the code
    not_found_code: int = 404  # the error code of "profile not found"
    tariff_limit_after: int | None = None  # erased profiles; then every delete answers 402
    echo_identifier: bool = False  # not-found texts name the identifier (redaction tests)
    record_times: bool = False  # keep the arrival time of every delete request
    # Faults that hit before the delete: nothing is deleted.
    rate_limit: float | None = None  # requests per second, above it 429
    rate_burst: float | None = None  # requests; the bucket's size, default rate_limit
    latency_ms: float = 0.0  # milliseconds, mean added latency
    latency_jitter_ms: float = 0.0  # milliseconds, uniform spread around the mean
    hang: float = 0.0  # probability: no answer for hang_s, then the connection closes
    drop: float = 0.0  # probability: the connection closes without an answer
    fail_429: float = 0.0  # probability: 429 with Retry-After
    fail_5xx: float = 0.0  # probability: one of fail_5xx_codes
    malformed: float = 0.0  # probability: 200 with a truncated body
    # Faults that hit after the service handled the request (whatever its answer):
    # a found profile is gone, the answer is lost.
    hang_after_delete: float = 0.0  # probability
    drop_after_delete: float = 0.0  # probability
    malformed_after_delete: float = 0.0  # probability
    # Amounts the faults use.
    fail_5xx_codes: tuple[int, ...] = (500, 502, 503)  # picked evenly
    retry_after: float | None = 1.0  # seconds, rounded up; None: no Retry-After header
    retry_after_http_date: bool = False  # Retry-After as an HTTP date instead of seconds
    hang_s: float = 3600.0  # seconds a hang lasts (it ends early when the sandbox stops)
    # Connection faults (see front.py), played below HTTP on a real socket.
    hangup_fin: float = 0.0  # probability per new connection: closed at accept (FIN)
    hangup_rst: float = 0.0  # probability per new connection: reset at accept (RST)
    early_503: float = 0.0  # probability per delete: 503 once the head is read, body unread
    idle_close: float = 0.0  # probability per answer: the keep-alive connection is then
    # closed after idle_close_ms without a new request
    idle_close_ms: float = 100.0  # milliseconds
    # Odd answers (see front.py): the service handled the request (a found profile is
    # erased), then the answer goes out in a shape a strict client must cope with.
    obs_fold: float = 0.0  # probability: header lines folded (obs-fold, RFC 9112 5.2)
    bare_lf: float = 0.0  # probability: lines of the head end in LF instead of CRLF
    oversize: float = 0.0  # probability: the body padded with spaces to oversize_bytes
    oversize_bytes: int = 5 * 1024 * 1024  # bytes
    gzip_bomb: float = 0.0  # probability: Content-Encoding gzip, gzip_bomb_bytes inflated
    gzip_bomb_bytes: int = 100 * 1024 * 1024  # bytes, decompressed (about 1/1000 on the wire)
    trickle: float = 0.0  # probability: the answer's bytes one at a time over trickle_s
    trickle_s: float = 3.0  # seconds

    @property
    def connection_faults(self) -> bool:
        """Whether connections must be served by the raw front (see front.py)."""
        return bool(
            self.early_503
            or self.idle_close
            or self.obs_fold
            or self.bare_lf
            or self.oversize
            or self.gzip_bomb
            or self.trickle
        )

    @property
    def faults_before(self) -> bool:
        """Whether any fault may hit before the delete (the fast path skips them)."""
        return bool(
            self.rate_limit is not None
            or self.latency_ms
            or self.latency_jitter_ms
            or self.hang
            or self.drop
            or self.fail_429
            or self.fail_5xx
            or self.malformed
        )

    @property
    def faults_after(self) -> bool:
        return bool(self.hang_after_delete or self.drop_after_delete or self.malformed_after_delete)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["fail_5xx_codes"] = list(self.fail_5xx_codes)
        return values


NAMES = frozenset(f.name for f in fields(Settings))

# name: (kind, metavar, help) of each setting, for the command line.
SWITCHES: dict[str, tuple[Kind, str | None, str]] = {
    "error_status": (
        "status",
        "{200,4xx}",
        "HTTP status of error answers: 200, or the one equal to the error code (default 4xx)",
    ),
    "not_found_code": ("code", "CODE", "error code of 'profile not found' (default 404)"),
    "tariff_limit_after": (
        "count",
        "N",
        "answer 402 (tariff limit) to every delete once N profiles are erased",
    ),
    "echo_identifier": ("flag", None, "name the identifier in not-found error texts"),
    "record_times": ("flag", None, "record each delete request's arrival in the stats"),
    "rate_limit": (
        "optional_amount",
        "R",
        "answer 429 with Retry-After above R delete requests per second (token bucket)",
    ),
    "rate_burst": ("optional_amount", "N", "bucket size of --rate-limit, requests (default R)"),
    "latency_ms": (
        "amount",
        "MS",
        "added latency per delete request, milliseconds: a mean, or a range LOW-HIGH "
        "drawn uniformly (sets --latency-jitter-ms)",
    ),
    "latency_jitter_ms": ("amount", "MS", "latency spread: uniform in mean +- MS"),
    "hang": (
        "probability",
        "P",
        "answer nothing for --hang-s seconds (less if the sandbox stops), then close",
    ),
    "drop": ("probability", "P", "close the connection without an answer"),
    "fail_429": ("probability", "P", "answer 429 with Retry-After"),
    "fail_5xx": ("probability", "P", "answer one of --fail-5xx-codes"),
    "malformed": ("probability", "P", "answer 200 with a truncated body"),
    "hang_after_delete": (
        "probability",
        "P",
        "handle the request (a found profile is erased), then answer nothing (as --hang)",
    ),
    "drop_after_delete": (
        "probability",
        "P",
        "handle the request (a found profile is erased), then close the connection",
    ),
    "malformed_after_delete": (
        "probability",
        "P",
        "handle the request (a found profile is erased), then answer 200 truncated",
    ),
    "fail_5xx_codes": (
        "codes",
        "CODES",
        "statuses --fail-5xx picks from, comma-separated "
        "(default 500,502,503: 500 Altcraft-shaped, others a proxy page)",
    ),
    "retry_after": (
        "optional_amount",
        "S",
        "Retry-After of --fail-429 answers, seconds, or 'none' for no header (default 1)",
    ),
    "retry_after_http_date": ("flag", None, "send Retry-After as an HTTP date"),
    "hang_s": ("amount", "S", "how long a hang lasts, seconds (default 3600)"),
    "hangup_fin": ("probability", "P", "close a new connection at accept, reading nothing (FIN)"),
    "hangup_rst": ("probability", "P", "reset a new connection at accept (RST, SO_LINGER 0)"),
    "early_503": (
        "probability",
        "P",
        "answer 503 (Connection: close) once a delete's head is read, before its body",
    ),
    "idle_close": (
        "probability",
        "P",
        "after an answer, close the keep-alive connection once idle for --idle-close-ms",
    ),
    "idle_close_ms": ("amount", "MS", "idle time before --idle-close closes, ms (default 100)"),
    "obs_fold": (
        "probability",
        "P",
        "handle the request, then answer with folded header lines (obs-fold)",
    ),
    "bare_lf": ("probability", "P", "handle the request, then answer with LF-only header lines"),
    "oversize": (
        "probability",
        "P",
        "handle the request, then pad the answer's body with spaces to --oversize-bytes",
    ),
    "oversize_bytes": ("bytes", "N", "size of an oversize body, bytes (default 5 MiB)"),
    "gzip_bomb": (
        "probability",
        "P",
        "handle the request, then answer gzip that inflates to --gzip-bomb-bytes",
    ),
    "gzip_bomb_bytes": ("bytes", "N", "inflated size of a gzip bomb, bytes (default 100 MiB)"),
    "trickle": (
        "probability",
        "P",
        "handle the request, then send the answer one byte at a time over --trickle-s",
    ),
    "trickle_s": ("amount", "S", "how long a trickle lasts, seconds (default 3)"),
}


class SettingError(ValueError):
    """A bad setting: ``name`` (underscored) and ``reason``."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"setting {name!r}: {reason}")
        self.name = name
        self.reason = reason


def update(settings: Settings, changes: Mapping[str, object]) -> Settings:
    """``settings`` with ``changes`` applied; values may be JSON values or CLI text.

    Raises :class:`SettingError` naming the first unknown key or bad value.
    """
    unknown = sorted(set(changes) - NAMES)
    if unknown:
        raise SettingError(unknown[0], "no such setting")
    latency = changes.get("latency_ms")
    if _is_range(latency):
        low, high = _range(latency)
        # A range A-B is uniform in [A, B]: its mean and its half-width as jitter.
        changes = {**changes, "latency_ms": (low + high) / 2}
        changes["latency_jitter_ms"] = (high - low) / 2
    coerced: dict[str, Any] = {
        name: _coerce(name, SWITCHES[name][0], value) for name, value in changes.items()
    }
    return dataclasses.replace(settings, **coerced)


def _is_range(value: object) -> bool:
    if isinstance(value, str):
        return "-" in value.strip().lstrip("-")
    return isinstance(value, list | tuple)


def _range(value: object) -> tuple[float, float]:
    """(low, high) milliseconds from ``"50-200"`` or ``[50, 200]``."""
    try:
        parts = value.split("-") if isinstance(value, str) else value
        if not isinstance(parts, list | tuple) or len(parts) != 2:
            raise ValueError
        low, high = (_number(part) for part in parts)
    except (TypeError, ValueError):
        raise SettingError(
            "latency_ms", "expected MS or a range LOW-HIGH of milliseconds"
        ) from None
    if low > high:
        raise SettingError("latency_ms", "the range's low end is above its high end")
    return low, high


# The most each switch may be set to: a sandbox told to wait 1e308 ms could
# not be stopped, one told to inflate a 1e12-byte bomb would exhaust memory.
MAXIMA: dict[str, float] = {
    "latency_ms": 600_000.0,  # milliseconds: ten minutes
    "latency_jitter_ms": 600_000.0,
    "idle_close_ms": 600_000.0,
    "hang_s": 86_400.0,  # seconds: a day
    "trickle_s": 3_600.0,
    "retry_after": 86_400.0,
    "rate_limit": 1_000_000.0,  # requests per second
    "rate_burst": 1_000_000.0,
    "oversize_bytes": 256 * 1024**2,  # bytes
    "gzip_bomb_bytes": 1024**3,
    "tariff_limit_after": 1_000_000_000,  # profiles
}


def _coerce(name: str, kind: Kind, value: object) -> object:
    try:
        result = _COERCE[kind](value)
    except (TypeError, ValueError) as exc:
        raise SettingError(name, str(exc)) from None
    most = MAXIMA.get(name)
    if most is not None and isinstance(result, int | float) and result > most:
        raise SettingError(name, f"expected at most {most:,.0f}")
    return result


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("expected a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a finite number >= 0")
    return number


def _probability(value: object) -> float:
    number = _number(value)
    if number > 1:
        raise ValueError("expected a probability between 0 and 1")
    return number


def _optional_amount(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    return _number(value)


def _count(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("expected an integer")
    number = int(value)
    if number < 0:
        raise ValueError("expected an integer >= 0")
    return number


def _bytes(value: object) -> int:
    number = _count(value)
    if number is None or number < 1:
        raise ValueError("expected a number of bytes >= 1")
    return number


def _code(value: object) -> int:
    number = _count(value)
    if number is None or not 1 <= number <= 999:
        raise ValueError("expected an error code between 1 and 999")
    return number


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "0", "no", "off"}:
        return False
    raise TypeError("expected true or false")


def _codes(value: object) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise TypeError("expected a non-empty list of HTTP statuses")
    codes = tuple(int(item) for item in items)
    if not all(500 <= code <= 599 for code in codes):
        raise ValueError("expected statuses between 500 and 599")
    return codes


def _status(value: object) -> ErrorStatus:
    text = str(value).lower()
    if text == "200":
        return "200"
    if text == "4xx":
        return "4xx"
    raise ValueError("expected '200' or '4xx'")


_COERCE: dict[str, Any] = {
    "probability": _probability,
    "amount": _number,
    "optional_amount": _optional_amount,
    "count": _count,
    "bytes": _bytes,
    "code": _code,
    "flag": _flag,
    "codes": _codes,
    "status": _status,
}
