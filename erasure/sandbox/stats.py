"""Counters the tests and the demo read from ``GET /__sandbox/stats``.

The JSON shape::

    {
      "requests": 12,                  # delete requests received (POSTs to the delete path)
      "answers": {"erased": 9, "not_found": 2, "429": 1},  # by kind, only kinds seen
      "deletes_per_profile": {"5f33d33ece94481aa9382110": 1},  # delete requests that
                                       # reached the store and matched the profile, live or
                                       # already erased; only profiles with any
      "erased_profiles": 9,
      "profiles_left": 91,
      "rate": {"mean_per_s": 240.0, "peak_per_s": 250, "first_at": 1.7e9, "last_at": 1.7e9},
      "request_times": [1.7e9, ...],   # epoch seconds of each arrival; with record_times only
      "fired": {"fail_429": 1, "hangup_rst": 2},  # times each switch fired, by setting
                                       # name (rate_limit for its 429s); only switches that did
      "restored": 3,                   # profiles re-added by POST /__sandbox/restore
      "imported": 1                    # new profiles added by POST /__sandbox/import
    }

Answer kinds: ``erased``, ``not_found``, ``400``, ``401``, ``402``, ``403``,
``rate_limited`` and ``429`` (429 from the rate limit and from ``fail_429``),
``500``/``502``/``503`` (or any other ``fail_5xx_codes``), ``hang``,
``drop``, ``malformed``, and ``hang_after_delete``, ``drop_after_delete``,
``malformed_after_delete`` (the profile was erased, the answer lost). A
request is counted once, by what the client got. ``early_503`` is the kind
of a delete answered 503 before its body was read; a connection hung up at
accept is no request (it shows in ``fired`` only), and an odd answer
(obs-fold, gzip bomb, ...) is counted by its kind and in ``fired``.
"""

from __future__ import annotations

from typing import Any

from erasure.sandbox.store import Store


class Stats:
    """Counts of requests and answers; cheap enough for the hot path."""

    def __init__(self) -> None:
        self.requests = 0
        self.answers: dict[str, int] = {}
        self.per_second: dict[int, int] = {}  # epoch second -> delete requests
        self.first_at: float | None = None  # epoch seconds
        self.last_at: float | None = None
        self.times: list[float] = []  # epoch seconds, only when recording
        self.fired: dict[str, int] = {}  # setting name -> times that switch fired
        self.restored = 0  # profiles re-added
        self.imported = 0  # profiles added as new

    def arrived(self, now: float, record: bool) -> None:
        """A delete request arrived at ``now`` (epoch seconds)."""
        self.requests += 1
        second = int(now)
        self.per_second[second] = self.per_second.get(second, 0) + 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        if record:
            self.times.append(now)

    def answered(self, kind: str) -> None:
        self.answers[kind] = self.answers.get(kind, 0) + 1

    def fire(self, switch: str) -> None:
        """The switch named ``switch`` (a setting name) fired once."""
        self.fired[switch] = self.fired.get(switch, 0) + 1

    def to_dict(self, store: Store, *, per_profile: bool = True) -> dict[str, Any]:
        elapsed = (self.last_at or 0.0) - (self.first_at or 0.0)
        mean = self.requests / elapsed if elapsed > 0 else float(self.requests)
        result: dict[str, Any] = {
            "requests": self.requests,
            "answers": dict(self.answers),
            "erased_profiles": store.erased,
            "profiles_left": store.profiles_left,
            "rate": {
                "mean_per_s": round(mean, 3),
                "peak_per_s": max(self.per_second.values(), default=0),
                "first_at": self.first_at,
                "last_at": self.last_at,
            },
        }
        result["fired"] = dict(self.fired)
        result["restored"] = self.restored
        result["imported"] = self.imported
        if per_profile:
            result["deletes_per_profile"] = store.deletes_per_profile()
        if self.times:
            result["request_times"] = list(self.times)
        return result
