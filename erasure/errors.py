"""Every error a user can cause, each family with its exit code.

The hierarchy::

    ErasureError                      (exit code on the class; the CLI prints one line)
    ├── UsageError                    64  bad command line
    ├── InputUnusable                 65  the input file cannot be used; nothing was sent
    ├── FileMissing                   66  the input file or the job file does not exist
    ├── ServiceUnavailable            69  the service refused the whole run or cannot be reached
    │   ├── Unreachable                   DNS, TLS, connection refused
    │   ├── WrongEndpoint                 HTTP 404/405/501 without an Altcraft body, or an
    │   │                                 HTML page with a 2xx/3xx status
    │   └── ExtraMissing                  a command needs an optional extra not installed
    ├── LedgerWriteError              74  the ledger could not be written (disk full, I/O error)
    ├── OutputError                   74  a rejects file or report could not be written
    ├── LedgerUnreadable              74  the ledger could not be read now (memory, an I/O
    │                                     error): the machine failed, not the file
    ├── InternalError                 70  an exception the tool did not foresee (a bug); the
    │                                     run stopped cleanly, everything recorded stays
    ├── TryAgainLater                 75  stopped with work left; run again to resume
    │   └── LedgerBusy                    another run holds the ledger
    ├── TokenRefused                  77  the service refused the token
    └── ConfigError                   78  the job file, a secret, the ledger's key, or the preflight
        ├── SecretMissing
        ├── LedgerMismatch                the ledger was written with another key or derivation
        │   └── NotMigrated               a read-only command on a ledger an older release wrote:
        │                                 `erasure migrate JOB` first
        ├── PreflightUnexpected           the preflight answer matched no configured code
        ├── StateDisagrees                the ledger's derived state disagrees with its events
        └── UnsafeLedger                  a ledger path that is a link, another user's, open to
                                          others' writes, or another application's SQLite file

Messages never contain an identifier or a secret: they name keys, variables,
files and columns.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The contract's exit codes (sysexits)."""

    OK = 0  # every identifier final, all erased or not_found
    REJECTED = 1  # finished, but a person must look: rejected, invalid or reappeared
    USAGE = 64
    DATAERR = 65
    NOINPUT = 66
    UNAVAILABLE = 69
    SOFTWARE = 70  # an internal error the tool did not foresee (a bug)
    IOERR = 74
    TEMPFAIL = 75
    NOPERM = 77
    CONFIG = 78


# What each code means, for people: the run's summary, the report, the demo.
MEANINGS: dict[int, str] = {
    ExitCode.OK: "every identifier has a final outcome: erased or not found",
    ExitCode.REJECTED: "finished, but a person must look: identifiers rejected by the service, "
    "invalid input rows, open pairs of an earlier input file that is gone or changed, or "
    "erased profiles that reappeared",
    ExitCode.USAGE: "bad command line",
    ExitCode.DATAERR: "the input file cannot be used; nothing was sent",
    ExitCode.NOINPUT: "the input file or job file does not exist",
    ExitCode.UNAVAILABLE: "the service refused the whole run or cannot be reached",
    ExitCode.SOFTWARE: "an internal error (a bug): the run stopped cleanly, everything "
    "recorded stays; please report it with the exception's name",
    ExitCode.IOERR: "the ledger or an output file could not be written",
    ExitCode.TEMPFAIL: "stopped with work left: run again to resume",
    ExitCode.NOPERM: "the service refused the token",
    ExitCode.CONFIG: "a configuration problem: the job file, a secret, the key or the preflight",
}

# When several apply, the first in this order wins.
PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.NOPERM,
    ExitCode.UNAVAILABLE,
    ExitCode.IOERR,
    ExitCode.SOFTWARE,
    ExitCode.CONFIG,
    ExitCode.TEMPFAIL,
    ExitCode.REJECTED,
    ExitCode.OK,
)


def worst(*codes: ExitCode) -> ExitCode:
    """The code that wins among several, by the contract's precedence."""
    present = set(codes) or {ExitCode.OK}
    return next(code for code in PRECEDENCE if code in present)


class ErasureError(Exception):
    """Base of every error the CLI turns into one line and an exit code."""

    exit_code: ExitCode = ExitCode.CONFIG

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ErasureError):
    exit_code = ExitCode.USAGE


class UnknownRequest(UsageError):
    """A request id the ledger has never seen: 64, in the same words in every command."""

    def __init__(self, request_id: str, hint: str = "") -> None:
        super().__init__(f"the ledger has never seen request {request_id!r}{hint}")
        self.request_id = request_id


class InputUnusable(ErasureError):
    exit_code = ExitCode.DATAERR


class FileMissing(ErasureError):
    exit_code = ExitCode.NOINPUT


class ServiceUnavailable(ErasureError):
    exit_code = ExitCode.UNAVAILABLE


class Unreachable(ServiceUnavailable):
    pass


class WrongEndpoint(ServiceUnavailable):
    pass


class ExtraMissing(ServiceUnavailable):
    """A command whose parts come with an extra (``erasure[sandbox]``) that is not installed."""


class LedgerWriteError(ErasureError):
    exit_code = ExitCode.IOERR


class OutputError(ErasureError):
    exit_code = ExitCode.IOERR


class InternalError(ErasureError):
    """An exception nothing foresaw (a bug). Its message names the exception's type only:
    the exception's own message could quote an identifier or the token."""

    exit_code = ExitCode.SOFTWARE


class TryAgainLater(ErasureError):
    exit_code = ExitCode.TEMPFAIL


class LedgerBusy(TryAgainLater):
    pass


class TokenRefused(ErasureError):
    exit_code = ExitCode.NOPERM


class ConfigError(ErasureError):
    exit_code = ExitCode.CONFIG


class SecretMissing(ConfigError):
    pass


class LedgerMismatch(ConfigError):
    pass


class NotMigrated(LedgerMismatch):
    """A read-only command on a ledger without this release's derived state (78).

    Read-only commands read only the derived state; migrating writes it, so
    they never do: the message names ``erasure migrate JOB``, which does
    (as any writer, such as the next ``erasure run``, does on opening).
    """

    def __init__(self, path: object) -> None:
        super().__init__(
            f"the ledger {path} was written by an older release and is not migrated yet: "
            "run `erasure migrate JOB` (or the next `erasure run` does it), then this "
            "command again"
        )


class PreflightUnexpected(ConfigError):
    pass


class UnsafeLedger(ConfigError):
    pass


class StateDisagrees(ConfigError):
    """The ledger's derived state cites an outcome its events do not bear out (78): run
    ``erasure verify`` (erasure.ledger.finality)."""


class LedgerUnreadable(ErasureError):
    exit_code = ExitCode.IOERR
