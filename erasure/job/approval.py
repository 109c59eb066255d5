"""``[approval]``: four eyes before an irreversible run or sweep (``erasure plan``/``approve``).

Declared with the job schema (:mod:`erasure.job.schema`). The rules that use
it (signatures, expiry, the policy recorded in the ledger) are in
:mod:`erasure.approval`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Self

from erasure.job.schema import Given, fail, key

_USED = ("plan", "approve", "run", "sweep")


def expiry_seconds(text: str) -> int | None:
    """``24h``, ``90m``, ``2d``, ``1h30m`` -> seconds; None when it is not one."""
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        return None
    d, h, m, s = (int(g or 0) for g in match.groups())
    seconds = d * 86400 + h * 3600 + m * 60 + s
    return seconds if seconds > 0 else None


def _expires(value: str) -> str | None:
    return None if expiry_seconds(value) else "must be a duration such as 24h, 90m, 2d"


@dataclasses.dataclass(frozen=True, slots=True)
class Approval:
    """``[approval]``: who plans, who approves, and whether a run needs it."""

    required: bool = key(
        False, "run and sweep send nothing without --plan APPROVED matching tonight", commands=_USED
    )
    needed: int = key(1, "how many of the approvers must sign", commands=_USED)
    approvers: tuple[Path, ...] = key(
        (), "public keys (.pub from erasure keygen) allowed to approve", commands=_USED
    )
    signing_key_file: Path | None = key(
        None, "the planner's Ed25519 key (from erasure keygen; owner-only)", commands=_USED
    )
    expires: str = key("24h", "how long a plan stays good after it is made", check=_expires)

    @property
    def expires_s(self) -> int:
        return expiry_seconds(self.expires) or 86400

    def finish(self, given: Given) -> Self:
        if self.needed < 1:
            raise fail("approval.needed must be at least 1")
        if self.required and not self.approvers:
            raise fail("approval.required needs approval.approvers (the keys allowed to approve)")
        if self.approvers and self.needed > len(self.approvers):
            raise fail(
                f"approval.needed is {self.needed} but approval.approvers lists only "
                f"{len(self.approvers)} keys"
            )
        if len(set(self.approvers)) != len(self.approvers):
            raise fail("approval.approvers lists a key twice")
        return self
