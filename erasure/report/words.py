"""The job's settings in words, for people: the HTML and XLSX reports' "Settings".

:meth:`erasure.job.Job.settings` is data (``None``, ``True``, ``[401, 403]``);
a compliance officer reads "no request id column", "yes", "errors 401, 403".
Each setting gets a label and a sentence; a setting this module does not know
yet is still shown, its value in plain text, so that nothing is hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["setting_rows"]


def _n(value: float) -> str:
    """20.0 -> "20", 2.5 -> "2.5"."""
    return f"{value:g}"


def _codes(value: Any) -> str:
    if not value:
        return "none"
    values = [str(v) for v in value]
    return ("error " if len(values) == 1 else "errors ") + ", ".join(values)


def _api_codes(codes: Mapping[str, Any]) -> str:
    said = {
        "not_found": "not found (nothing to erase)",
        "token": "token refused (the run stops, exit 77)",
        "unavailable": "service refuses the whole run (exit 69)",
    }
    parts = [f"{said.get(name, name)}: {_codes(value)}" for name, value in codes.items()]
    return "; ".join(parts) + "; any other error code: rejected, a person must look"


def _deadline_rule(value: Any) -> str:
    from erasure.deadlines import PRESETS

    preset = PRESETS.get(str(value))
    if preset is None:
        return f"{value} from the day after receipt, to the end of the due day"
    limit = f", extendable by {preset.extension_max}" if preset.extension_max else ", no extension"
    return f"{value}: {preset.period}{limit} ({preset.source})"


def _column(absent: str) -> Callable[[Any], str]:
    def say(value: Any) -> str:
        return f"the column “{value}”" if value else absent

    return say


def _rate(value: Any) -> str:
    if value == "auto":
        return "found automatically from the service's answers (never above the maximum)"
    return f"at most {_n(float(value))} deletes per second"


_SAY: dict[str, tuple[str, Callable[[Any], str]]] = {
    "base_url": ("Altcraft address", str),
    "format": ("Request format", lambda v: str(v).upper()),
    "timeout_s": ("Time allowed for one answer", lambda v: f"{_n(float(v))} seconds"),
    "codes": ("Error codes", _api_codes),
    "db_id": (
        "Database",
        lambda v: f"database {v}" if v is not None else "taken from a column of the input",
    ),
    "db_id_column": ("Database column", _column("none (one database for every row)")),
    "resource_id": (
        "Resource",
        lambda v: f"resource {v}" if v is not None else "none (the whole database)",
    ),
    "resource_id_column": ("Resource column", _column("none")),
    "request_id_column": (
        "Request id column",
        _column("none (identifiers are not tied to requests)"),
    ),
    "received_at_column": (
        "Received-at column",
        _column("none (no deadline is computed)"),
    ),
    "deadline_days": (
        "Deadline",
        lambda v: (
            f"{v} days after the request was received"
            if v is not None
            else "by the deadline rule below"
        ),
    ),
    "deadline": ("Deadline rule", _deadline_rule),
    "extension_max": (
        "Extension limit",
        lambda v: f"at most {v} past the original due day" if v else "none (as the rule says)",
    ),
    "timezone": (
        "Timezone",
        lambda v: (
            f"{v}: a deadline ends at midnight there; received times without an offset "
            "are read there"
        ),
    ),
    "calendar": ("Working days", lambda v: f"the {v} production calendar shipped with erasure"),
    "phone_region": (
        "Phone region",
        lambda v: f"{v} (numbers without a country code are read as {v} numbers)",
    ),
    "header_row": (
        "Header row",
        lambda v: (
            f"row {v}"
            if v
            else "found in the file (the first of its first 20 rows naming every mapped column)"
        ),
    ),
    "split_addresses": (
        "Several addresses in one cell",
        lambda v: (
            "one identifier each"
            if v
            else "an invalid record (several_addresses): a second address may be someone else's"
        ),
    ),
    "concurrency": ("Deletes at a time", lambda v: f"at most {v}"),
    "rate_per_s": ("Rate", _rate),
    "max_rate_per_s": (
        "Highest rate",
        lambda v: f"{_n(float(v))} deletes per second" if v is not None else "not set",
    ),
    "max_attempts": ("Attempts", lambda v: f"at most {v} per identifier per run"),
    "retry_after_cap_s": (
        "Longest wait the service may ask for",
        lambda v: (
            f"{_n(float(v))} seconds (a longer Retry-After: that identifier is failed "
            "for this run and the next run retries it)"
        ),
    ),
    "preflight": (
        "Preflight check",
        lambda v: (
            "yes: one delete of an address that cannot exist proves the token and the codes "
            "before the first real identifier"
            if v
            else "off"
        ),
    ),
}


def _plain(value: Any) -> str:
    """A value this module has no sentence for, without Python's spelling."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items()) or "none"
    return str(value)


def setting_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, sentence) per setting, in the job's order; never a secret (none are given)."""
    rows = []
    for name, value in settings.items():
        label, say = _SAY.get(name, (name, _plain))
        rows.append((label, say(value)))
    return rows
