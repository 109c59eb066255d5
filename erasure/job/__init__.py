"""The job file: TOML in, a frozen and checked :class:`Job` out.

The schema is declared once, as the frozen dataclasses of
:mod:`erasure.job.sections` (every key with its default, meaning, check and
the commands that read it); :func:`erasure.job.schema.read` is the one reader
that checks a file against it: an unknown key, a wrong type or a bad value is
a :class:`~erasure.errors.ConfigError` (78) naming the key. Relative paths
(defaults too) resolve against the job file's own folder. The README's
job-file reference is printed from the same declaration
(``python -m erasure.job.reference``), and ``tests/test_job_reference.py``
fails when the README differs.

A section is needed only by the commands that use it: ``[receipts] issuer``
is checked by ``erasure receipt`` (:meth:`Receipts.require`), not when the
job is loaded; ``[sweep] db_id`` defaults to ``[input] db_id``.

Secrets (the API token, the ledger key) are not read here: :meth:`Job.token`
and :meth:`Job.keyer` read them on demand, so that commands that need neither
never ask for them. A secret file that others may read is refused (78), as
ssh refuses such keys (:func:`erasure.files.read_secret`). ``[ledger] group``
is resolved when the job is read (an unknown group is 78): :attr:`Job.perms`
is what every file the tool writes is created with.

Adding a section (``[approval]``, ``[act]``, ...):

1. Declare it as a frozen dataclass, in your own module or in
   ``sections.py``: each key ``name: T = key(default, "meaning",
   check=..., commands=(...))`` (no default: required), sub-tables with
   ``table(Factory, "meaning")``, derived values with ``internal(...)``.
   Types the reader knows: ``bool int float str Path``, ``Literal[...]``,
   unions of those, ``X | None``, ``frozenset[int]``, ``tuple[str, ...]``,
   another section, ``tuple[Section, ...]``. Rules tying keys together go in
   ``def finish(self, given: Given) -> Self`` (raise ``fail("...")``;
   ``given.keys`` says which keys the file set).
2. Add it to :class:`Job` below: ``act: Act | None = table(None, "meaning",
   commands=("act",))`` for a section that is absent unless written (its
   command then says what is missing), or ``table(Act, ...)`` for one whose
   defaults always apply.
3. Run ``python -m erasure.job.reference --write README.md`` and commit the
   README with it.
"""

from __future__ import annotations

import os
import sqlite3
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from erasure import keys
from erasure.errors import ConfigError, FileMissing, InputUnusable, SecretMissing
from erasure.files import (
    OWNER_ONLY,
    Perms,
    open_regular,
    read_secret,
    readonly_uri,
    refuse_writable_by_others,
)
from erasure.job.act import Act
from erasure.job.approval import Approval
from erasure.job.keep import Notify, Suppress
from erasure.job.schema import Given, internal, read, table
from erasure.job.sections import (
    DEFAULT_KEY_ENV,
    DEFAULT_TOKEN_ENV,
    INTAKE,
    LEDGER,
    MATCHINGS,
    SENDING,
    Api,
    ApiFormat,
    Codes,
    Columns,
    CustomColumn,
    Input,
    Ledger,
    Matching,
    Receipts,
    Run,
    Screen,
    Sweep,
)

__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_TOKEN_ENV",
    "MATCHINGS",
    "MIN_LEDGER_KEY_LENGTH",
    "Act",
    "Api",
    "ApiFormat",
    "Approval",
    "Codes",
    "Columns",
    "CustomColumn",
    "Input",
    "Job",
    "Ledger",
    "Matching",
    "Notify",
    "Receipts",
    "Run",
    "Screen",
    "Suppress",
    "Sweep",
    "ledger_derivation",
    "load",
    "parse",
]

MIN_LEDGER_KEY_LENGTH = 16  # characters; a shorter key is too easy to guess
# (we recommend 32 random bytes: erasure.keys.new_ledger_key)


@dataclass(frozen=True, slots=True)
class Job:
    """A checked job file. Paths are absolute."""

    api: Api = table(Api, "the Altcraft endpoint", commands=SENDING)
    input: Input = table(Input, "the file of requests", commands=INTAKE)
    run: Run = table(Run, "how deletes are sent", commands=SENDING)
    ledger: Ledger = table(Ledger, "the ledger and its key", commands=LEDGER)
    receipts: Receipts | None = table(
        None, "optional; needed by erasure receipt", commands=("receipt",)
    )
    sweep: Sweep = table(Sweep, "how to read an Altcraft export", commands=("sweep",))
    screen: Screen = table(Screen, "how to read an import file", commands=("screen",))
    suppress: Suppress | None = table(
        None,
        "optional, off when absent: erased people onto Altcraft suppression lists",
        commands=("run",),
    )
    notify: Notify | None = table(
        None, "optional: a signed notice per finished request", commands=("run", "notify")
    )
    act: Act | None = table(
        None, "optional: the destruction act's fields, needed by erasure act", commands=("act",)
    )
    approval: Approval | None = table(
        None,
        "optional: four eyes before a run or sweep (erasure plan, erasure approve)",
        commands=("plan", "approve", "run", "sweep"),
    )
    path: Path = internal(Path())  # the job file itself

    def finish(self, given: Given) -> Self:
        if self.sweep.db_id is None and self.input.db_id is not None:
            return replace(self, sweep=replace(self.sweep, db_id=self.input.db_id))
        return self

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
            # only the ledger key may be the group's (0640): a member must never read the token
            perms = self.perms if section == "ledger" else OWNER_ONLY
            return read_secret(file, f"{section} {what} file", perms)
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
            # deadline_days: the rule's days where it is "N days" (what older releases read)
            "deadline_days": self.input.deadline.days,
            **self.input.deadline.settings(),
            "phone_region": self.input.phone_region,
            "header_row": self.input.header_row,
            "split_addresses": self.input.split_addresses,
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
        db = sqlite3.connect(readonly_uri(path), uri=True)  # a group member creates nothing
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'derivation'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return str(row[0]) if row else None


def parse(text: str, path: Path) -> Job:
    """Parse a job file's text; ``path`` is where it lives (for relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from None
    job: Job = read(Job, data, "", path.parent, top=True)
    return replace(job, path=path)


def load(path: str | os.PathLike[str]) -> Job:
    """Read and check the job file at ``path``."""
    p = Path(path).expanduser().absolute()
    try:
        # a regular file only (66 when missing): a FIFO would be waited on for ever
        with open_regular(p, "job file") as f:
            refuse_writable_by_others(p, "job file", os.fstat(f.fileno()).st_mode)
            raw = f.read()
    except InputUnusable as exc:  # not a regular file, or unreadable: the job is unusable
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise FileMissing(f"job file {p} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"job file {p} is not UTF-8 text") from None
    return parse(text, p)
