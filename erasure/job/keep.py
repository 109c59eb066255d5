"""``[suppress]`` and ``[notify]``: the job sections for keeping people gone and telling others.

Declared with the job schema (:mod:`erasure.job.schema`); the commands that
use them import them from :mod:`erasure.after.keep` too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from erasure.job.schema import Given, fail, key, positive, variable_name
from erasure.job.sections import is_loopback

DEFAULT_NOTIFY_SECRET_ENV = "ERASURE_NOTIFY_SECRET"
SUPPRESS_BATCH = 1000  # values per emails_add/phones_add call (Altcraft advises at most 10,000)


def _list_id(value: int) -> str | None:
    return None if value > 0 else "must be a positive list id"


def _batch(value: int) -> str | None:
    return None if 1 <= value <= 10_000 else "must be between 1 and 10000"


@dataclasses.dataclass(frozen=True, slots=True)
class Suppress:
    """``[suppress]``: Altcraft suppression lists for erased people's emails and phones."""

    email_list_id: int | None = key(
        None, "the list erased emails are added to (suppresses/emails_add)", check=_list_id
    )
    phone_list_id: int | None = key(
        None, "the list erased phones are added to (suppresses/phones_add)", check=_list_id
    )
    include_not_found: bool = key(False, "also people Altcraft did not hold (adds a record)")
    batch_size: int = key(SUPPRESS_BATCH, "values per call", check=_batch)

    def finish(self, given: Given) -> Self:
        if self.email_list_id is None and self.phone_list_id is None:
            raise fail("[suppress] needs email_list_id or phone_list_id (or both)")
        return self


NoticeFormat = Literal["generic", "opendsr"]


def _notify_url(url: str) -> str | None:
    """https, or http to a loopback host only (the secret signs what goes there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and is_loopback(host):
        return None
    return "must be an https:// URL (http:// only for loopback)"


@dataclasses.dataclass(frozen=True, slots=True)
class Notify:
    """``[notify]``: where signed notices go, with which secret, in which body."""

    url: str = key(doc="where notices are POSTed", check=_notify_url)
    secret_env: str | None = key(
        DEFAULT_NOTIFY_SECRET_ENV,
        "the variable holding the HMAC secret (header Erasure-Signature: t=...,v1=...)",
        check=variable_name,
    )
    secret_file: Path | None = key(None, "or a file holding it (owner-only)")
    format: NoticeFormat = key("generic", 'the body: "generic" or "opendsr"')
    timeout_s: float = key(10.0, "seconds per delivery attempt", check=positive)
    max_time_s: float = key(
        60.0, "seconds all attempts of one notice may take, waits included", check=positive
    )
    max_attempts: int = key(5, "deliveries of one notice per command", check=positive)

    def finish(self, given: Given) -> Self:
        if "secret_env" in given.keys and "secret_file" in given.keys:
            raise fail("notify.secret_env and notify.secret_file are both set; keep one")
        if "secret_file" in given.keys:
            return dataclasses.replace(self, secret_env=None)
        return self
