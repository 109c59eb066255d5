"""The sandbox's switches that can change while it runs: faults and answer style.

One frozen :class:`Settings` declares them, each field once with
:func:`switch`: its default, how its value is read (:data:`Read`), its bound,
its metavar and help. The command line and ``POST /__sandbox/config`` fill it
through the same :func:`update`, so the two cannot drift apart: each field is
a ``--dashed-name`` switch and a JSON key of the same (underscored) name, and
``--help`` prints the declaration. Probabilities are drawn per delete request,
in the order of the fields below, from one generator seeded by ``--seed``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from erasure.declared import declare, fields_of

ErrorStatus = Literal["200", "4xx"]

Read = Callable[[object], Any]
"""How a switch reads its value, JSON or command-line text: the value, or
TypeError/ValueError saying what it expected."""


Hits = Literal["accept", "before", "after", "connection"] | None
"""Where the fault a switch makes hits: a connection at accept, a request before
the delete or after it, or a connection served by the raw front (front.py); a
fault is on when its switch is not at its default."""


def switch(
    default: Any,
    read: Read,
    metavar: str | None,
    help: str,
    most: float = math.inf,
    hits: Hits = None,
) -> Any:
    """A runtime switch: ``read`` takes its value, at most ``most``; ``help`` for ``--help``."""
    return declare(default, read=read, metavar=metavar, help=help, most=most, hits=hits)


def chance(help: str, hits: Hits) -> Any:
    """A probability ``P`` of a fault, 0 (never) by default."""
    return switch(0.0, probability, "P", help, hits=hits)


def toggle(help: str) -> Any:
    """A flag, off by default."""
    return switch(False, flag, None, help)


# ---------------------------------------------------------------- how values are read


def amount(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("expected a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a finite number >= 0")
    return number


def probability(value: object) -> float:
    number = amount(value)
    if number > 1:
        raise ValueError("expected a probability between 0 and 1")
    return number


def optional_amount(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    return amount(value)


def count(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("expected an integer")
    try:
        number = int(value)
    except ValueError:
        raise ValueError("expected an integer") from None
    if number < 0:
        raise ValueError("expected an integer >= 0")
    return number


def size(value: object) -> int:
    number = count(value)
    if number is None or number < 1:
        raise ValueError("expected a number of bytes >= 1")
    return number


def error_code(value: object) -> int:
    number = count(value)
    if number is None or not 1 <= number <= 999:
        raise ValueError("expected an error code between 1 and 999")
    return number


def flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "0", "no", "off"}:
        return False
    raise TypeError("expected true or false")


def statuses(value: object) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise TypeError("expected a non-empty list of HTTP statuses")
    try:
        codes = tuple(int(item) for item in items)
    except (TypeError, ValueError):
        raise ValueError("expected HTTP statuses, comma-separated") from None
    if not all(500 <= code <= 599 for code in codes):
        raise ValueError("expected statuses between 500 and 599")
    return codes


def error_status(value: object) -> ErrorStatus:
    text = str(value).lower()
    if text == "200":
        return "200"
    if text == "4xx":
        return "4xx"
    raise ValueError("expected '200' or '4xx'")


# The bounds: a sandbox told to wait 1e308 ms could not be stopped, one told to
# inflate a 1e12-byte bomb would exhaust memory.
_MINUTES_10 = 600_000.0  # milliseconds
_DAY = 86_400.0  # seconds
_PER_SECOND = 1_000_000.0  # requests per second
_ERASED = "handle the request (a found profile is erased), then"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every runtime switch; all off by default (a healthy, fast service)."""

    # The service's own answers.
    error_status: ErrorStatus = switch(
        "4xx",
        error_status,
        "{200,4xx}",
        "HTTP status of error answers: 200, or the one equal to the error code (default 4xx)",
    )
    not_found_code: int = switch(
        404, error_code, "CODE", "error code of 'profile not found' (default 404)"
    )
    tariff_limit_after: int | None = switch(
        None,
        count,
        "N",
        "answer 402 (tariff limit) to every delete once N profiles are erased",
        most=1_000_000_000,
    )
    # for redaction tests
    echo_identifier: bool = toggle("name the identifier in not-found error texts")
    record_times: bool = toggle("record each delete request's arrival in the stats")
    # Faults that hit before the delete: nothing is deleted.
    rate_limit: float | None = switch(
        None,
        optional_amount,
        "R",
        "answer 429 with Retry-After above R delete requests per second (token bucket)",
        most=_PER_SECOND,
        hits="before",
    )
    rate_burst: float | None = switch(
        None,
        optional_amount,
        "N",
        "bucket size of --rate-limit, requests (default R)",
        most=_PER_SECOND,
    )
    latency_ms: float = switch(
        0.0,
        amount,
        "MS",
        "added latency per delete request, milliseconds: a mean, or a range LOW-HIGH "
        "drawn uniformly (sets --latency-jitter-ms)",
        most=_MINUTES_10,
        hits="before",
    )
    latency_jitter_ms: float = switch(
        0.0, amount, "MS", "latency spread: uniform in mean +- MS", most=_MINUTES_10, hits="before"
    )
    hang: float = chance(
        "answer nothing for --hang-s seconds (less if the sandbox stops), then close", hits="before"
    )
    drop: float = chance("close the connection without an answer", hits="before")
    fail_429: float = chance("answer 429 with Retry-After", hits="before")
    fail_5xx: float = chance("answer one of --fail-5xx-codes", hits="before")
    malformed: float = chance("answer 200 with a truncated body", hits="before")
    # Faults that hit after the service handled the request (whatever its answer):
    # a found profile is gone, the answer is lost.
    hang_after_delete: float = chance(f"{_ERASED} answer nothing (as --hang)", hits="after")
    drop_after_delete: float = chance(f"{_ERASED} close the connection", hits="after")
    malformed_after_delete: float = chance(f"{_ERASED} answer 200 truncated", hits="after")
    # Amounts the faults use.
    fail_5xx_codes: tuple[int, ...] = switch(
        (500, 502, 503),
        statuses,
        "CODES",
        "statuses --fail-5xx picks from (evenly), comma-separated "
        "(default 500,502,503: 500 Altcraft-shaped, others a proxy page)",
    )
    retry_after: float | None = switch(
        1.0,
        optional_amount,
        "S",
        "Retry-After of --fail-429 answers, seconds (rounded up), or 'none' for no header "
        "(default 1)",
        most=_DAY,
    )
    retry_after_http_date: bool = toggle("send Retry-After as an HTTP date")
    hang_s: float = switch(
        3600.0, amount, "S", "how long a hang lasts, seconds (default 3600)", most=_DAY
    )
    # Connection faults (see front.py), played below HTTP on a real socket.
    hangup_fin: float = chance(
        "close a new connection at accept, reading nothing (FIN)", hits="accept"
    )
    hangup_rst: float = chance("reset a new connection at accept (RST, SO_LINGER 0)", hits="accept")
    early_503: float = chance(
        "answer 503 (Connection: close) once a delete's head is read, before its body",
        hits="connection",
    )
    idle_close: float = chance(
        "after an answer, close the keep-alive connection once idle for --idle-close-ms",
        hits="connection",
    )
    idle_close_ms: float = switch(
        100.0,
        amount,
        "MS",
        "idle time before --idle-close closes, ms (default 100)",
        most=_MINUTES_10,
    )
    # Odd answers (see front.py): the service handled the request (a found profile is
    # erased), then the answer goes out in a shape a strict client must cope with.
    obs_fold: float = chance(
        "handle the request, then answer with folded header lines (obs-fold, RFC 9112 5.2)",
        hits="connection",
    )
    bare_lf: float = chance(
        "handle the request, then answer with LF-only header lines", hits="connection"
    )
    oversize: float = chance(
        "handle the request, then pad the answer's body with spaces to --oversize-bytes",
        hits="connection",
    )
    oversize_bytes: int = switch(
        5 * 1024**2,
        size,
        "N",
        "size of an oversize body, bytes (default 5 MiB)",
        most=256 * 1024**2,
    )
    gzip_bomb: float = chance(
        "handle the request, then answer gzip inflating to --gzip-bomb-bytes", hits="connection"
    )
    gzip_bomb_bytes: int = switch(
        100 * 1024**2,
        size,
        "N",
        "inflated size of a gzip bomb, bytes (default 100 MiB; about 1/1000 on the wire)",
        most=1024**3,
    )
    trickle: float = chance(
        "handle the request, then send the answer one byte at a time over --trickle-s",
        hits="connection",
    )
    trickle_s: float = switch(
        3.0, amount, "S", "how long a trickle lasts, seconds (default 3)", most=3_600.0
    )

    @property
    def hangups(self) -> bool:
        """Whether a new connection may be closed or reset at accept."""
        return self._on("accept")

    @property
    def connection_faults(self) -> bool:
        """Whether connections must be served by the raw front (see front.py)."""
        return self._on("connection")

    @property
    def faults_before(self) -> bool:
        """Whether any fault may hit before the delete (the fast path skips them)."""
        return self._on("before")

    @property
    def faults_after(self) -> bool:
        return self._on("after")

    def _on(self, hits: Hits) -> bool:
        return any(getattr(self, name) != default for name, default in _HITS[hits])

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["fail_5xx_codes"] = list(self.fail_5xx_codes)
        return values


# name: its declaration (read, metavar, help, most), in the order of the fields
SWITCHES: dict[str, Mapping[str, Any]] = {f.name: f.metadata for f, _ in fields_of(Settings)}
_HITS: dict[Hits, list[tuple[str, Any]]] = {
    h: [] for h in ("accept", "before", "after", "connection")
}
for _f, _ in fields_of(Settings):
    _HITS.setdefault(_f.metadata["hits"], []).append((_f.name, _f.default))
# The most each bounded switch may be set to.
MAXIMA: dict[str, float] = {
    name: s["most"] for name, s in SWITCHES.items() if s["most"] != math.inf
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
    unknown = sorted(set(changes) - SWITCHES.keys())
    if unknown:
        raise SettingError(unknown[0], "no such setting")
    latency = changes.get("latency_ms")
    if _is_range(latency):
        low, high = _range(latency)
        # A range A-B is uniform in [A, B]: its mean and its half-width as jitter.
        changes = {**changes, "latency_ms": (low + high) / 2}
        changes["latency_jitter_ms"] = (high - low) / 2
    coerced: dict[str, Any] = {name: _read(name, value) for name, value in changes.items()}
    return dataclasses.replace(settings, **coerced)


def _read(name: str, value: object) -> Any:
    declared = SWITCHES[name]
    try:
        result = declared["read"](value)
    except (TypeError, ValueError) as exc:
        raise SettingError(name, str(exc)) from None
    most = declared["most"]
    if isinstance(result, int | float) and result > most:
        raise SettingError(name, f"expected at most {most:,.0f}")
    return result


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
        low, high = (amount(part) for part in parts)
    except (TypeError, ValueError):
        raise SettingError(
            "latency_ms", "expected MS or a range LOW-HIGH of milliseconds"
        ) from None
    if low > high:
        raise SettingError("latency_ms", "the range's low end is above its high end")
    return low, high
