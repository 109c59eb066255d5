"""What a run did: counts, why it stopped, and the exit code that follows."""

from __future__ import annotations

import enum
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from erasure.errors import ErasureError, ExitCode, worst
from erasure.ledger import Event, Kind, Outcome, details


class StopReason(enum.StrEnum):
    """Why a run stopped before its plan was done: a closed set."""

    # SIGINT or SIGTERM: stop cleanly, exit 75.
    SIGNAL = "signal"
    # --max-duration or --stop-at: the time budget is used up, exit 75.
    DEADLINE = "deadline"
    # The service refused the token: exit 77.
    TOKEN = "token"
    # The service refused the whole run (or answered like a wrong URL): exit 69.
    UNAVAILABLE = "unavailable"
    # The ledger could not be written: exit 74.
    LEDGER = "ledger"
    # Unforeseen exceptions kept coming (a bug): exit 70.
    INTERNAL = "internal"


_STOP_CODES: dict[StopReason, ExitCode] = {
    StopReason.SIGNAL: ExitCode.TEMPFAIL,
    StopReason.DEADLINE: ExitCode.TEMPFAIL,
    StopReason.TOKEN: ExitCode.NOPERM,
    StopReason.UNAVAILABLE: ExitCode.UNAVAILABLE,
    StopReason.LEDGER: ExitCode.IOERR,
    StopReason.INTERNAL: ExitCode.SOFTWARE,
}


@dataclass(slots=True)
class Summary:
    """What a run did; the CLI prints it and picks the exit code from it.

    Mutable: the runner counts into it as events are committed.
    """

    run: int
    planned_pairs: int
    planned_keys: int
    already_done: int
    already_rejected: int
    outcomes: Counter[Outcome] = field(default_factory=Counter)  # pairs, this run
    requests: int = 0  # requests sent, retries and the preflight included
    in_doubt: int = 0  # outcomes recorded with the in-doubt flag
    started: float = field(default_factory=time.monotonic)  # time.monotonic(), seconds
    finished: float | None = None  # time.monotonic(), seconds
    stop_reason: StopReason | None = None
    stop_detail: str | None = None
    preflight: str | None = None
    withdrawn: int = 0
    unrecorded: int = 0  # keys of the plan neither reached nor recorded (a huge plan, stopped)
    fatal: ErasureError | None = None  # what stopped the run as a whole, if anything
    invalid: int = 0  # invalid records of the run's input: a person must fix the file (exit 1)
    suppressed: int = 0  # values added to a suppression list this run ([suppress])
    suppression_failed: int = 0  # values whose addition failed: exit 1, never a stop
    held_back: int = 0  # pairs a hold or cancellation given during the run kept from being sent
    set_aside: int = 0  # pairs of the input a decision kept out of the plan (not planned_pairs)
    # open pairs of earlier input files gone or changed (erasure.carry): a person must act
    open_elsewhere: int = 0

    @property
    def pending(self) -> int:
        done = sum(self.outcomes[o] for o in (Outcome.ERASED, Outcome.NOT_FOUND, Outcome.REJECTED))
        return self.planned_pairs - done - self.held_back  # a person's decision is no work left

    @property
    def duration_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def exit_code(self) -> ExitCode:
        codes = [ExitCode.OK]
        if self.fatal is not None:
            codes.append(self.fatal.exit_code)
        if self.stop_reason is not None:
            codes.append(_STOP_CODES[self.stop_reason])
        if self.pending:
            codes.append(ExitCode.TEMPFAIL)
        if (
            self.outcomes[Outcome.REJECTED]
            or self.already_rejected
            or self.invalid
            or self.suppression_failed
            or self.open_elsewhere
        ):
            codes.append(ExitCode.REJECTED)
        return worst(*codes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "planned_pairs": self.planned_pairs,
            "planned_keys": self.planned_keys,
            "already_done": self.already_done,
            # the service's answers (a person's decisions are held_back, below)
            "outcomes": {
                o.value: self.outcomes[o]
                for o in Outcome
                if o not in (Outcome.PENDING, Outcome.HELD, Outcome.CANCELLED)
            },
            "pending": self.pending,
            "requests": self.requests,
            "in_doubt": self.in_doubt,
            "invalid": self.invalid,
            "suppressed": self.suppressed,
            "suppression_failed": self.suppression_failed,
            "open_elsewhere": self.open_elsewhere,
            "withdrawn": self.withdrawn,
            "unrecorded": self.unrecorded,
            "duration_s": round(self.duration_s, 3),
            "stop_reason": None if self.stop_reason is None else self.stop_reason.value,
            "preflight": self.preflight,
            "error": None if self.fatal is None else str(self.fatal),
            **({"held_back": self.held_back} if self.held_back else {}),
            **({"set_aside": self.set_aside} if self.set_aside else {}),
        }


def finish_event(run: int, summary: Summary, exit_code: ExitCode) -> Event:
    """The run's last event: its exit code and counts."""
    detail = details.build(
        details.RunFinishedDetail, summary.as_dict() | {"exit_code": int(exit_code)}
    )
    return Event(Kind.RUN_FINISHED, run, detail=details.encode(detail))
