"""What can go wrong between erasure and the service, as types (pure: no network code).

:func:`erasure.client.send` raises nothing but a :class:`TransportFailure`
when a request gets no usable answer; :func:`erasure.verdicts.classify_exception`
and :func:`erasure.run.retry.decide` decide from its class and its fields,
never from its message (which is one line in words, for people)::

    TransportFailure            stage, timed_out; maybe_reached and reason follow from them
    ├── UnusableURL             the URL cannot be sent to (a scheme httpx does not speak)
    └── Unforeseen              an exception no layer was expected to raise; type_name

The :class:`Stage` says how far the request got, and so whether the service
may have acted on it: nothing was sent before :data:`Stage.ANSWER` and
:data:`Stage.SEND`; a peer that accepted the connection and hung up before
the request left (:data:`Stage.HUNG_UP`) was reached as a host, though not
as a request, which the preflight tells apart from no connection at all.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from erasure.verdicts import RetryReason

__all__ = ["NOT_SENT", "Stage", "TransportFailure", "Unforeseen", "UnusableURL"]


class Stage(enum.StrEnum):
    """How far a request got before it failed."""

    # Waiting for a free connection of the pool: nothing was sent.
    POOL = "pool"
    # DNS, the TCP connect, a proxy's tunnel, the TLS handshake: nothing was sent,
    # and no peer that speaks for the service was reached.
    CONNECT = "connect"
    # A peer accepted the connection, then closed or reset it before the request
    # left: nothing was sent, but the host is there (a proxy while its upstream restarts).
    HUNG_UP = "hung_up"
    # Writing the request: some or all of it may have left.
    SEND = "send"
    # The request left; its answer was lost, late or unreadable.
    ANSWER = "answer"
    # No layer said where (a generic error of a transport): assume it was sent.
    UNKNOWN = "unknown"


# The stages at which the request cannot have reached the service.
NOT_SENT: frozenset[Stage] = frozenset({Stage.POOL, Stage.CONNECT, Stage.HUNG_UP})

# The retry reason of each stage, (not timed out, timed out): one table, read by
# TransportFailure.reason, so that a stage added here without a reason fails at import.
_REASONS: dict[Stage, tuple[RetryReason, RetryReason]] = {
    Stage.POOL: ("pool_timeout", "pool_timeout"),
    Stage.CONNECT: ("connect", "connect_timeout"),
    Stage.HUNG_UP: ("connect", "connect"),
    Stage.SEND: ("disconnected", "write_timeout"),
    Stage.ANSWER: ("disconnected", "read_timeout"),
    Stage.UNKNOWN: ("network", "read_timeout"),
}
assert set(_REASONS) == set(Stage)


class TransportFailure(Exception):
    """A request that got no usable answer.

    ``words`` is one short line saying what went wrong (never a header, a
    body or an identifier); ``stage`` how far the request got; ``timed_out``
    whether the budget (``api.timeout_s``) ran out, rather than the peer or
    the network failing.
    """

    def __init__(self, words: str, stage: Stage, *, timed_out: bool = False) -> None:
        super().__init__(words)
        self.words = words
        self.stage = stage
        self.timed_out = timed_out

    @property
    def maybe_reached(self) -> bool:
        """Whether the service may have acted on the request: it may have left."""
        return self.stage not in NOT_SENT

    @property
    def reason(self) -> RetryReason:
        """The retry reason this failure is recorded with."""
        return _REASONS[self.stage][self.timed_out]

    def __str__(self) -> str:
        return self.words


class UnusableURL(TransportFailure):
    """The URL cannot be sent to at all (a scheme the transport does not speak)."""

    def __init__(self, words: str = "the URL cannot be used") -> None:
        super().__init__(words, Stage.CONNECT)


class Unforeseen(TransportFailure):
    """An exception no layer was expected to raise, wrapped (``__cause__`` holds it).

    ``type_name`` is its type's name, for the one log line; its message is
    not kept, as it may quote anything. It may have been sent.
    """

    def __init__(self, type_name: str) -> None:
        super().__init__(f"unforeseen {type_name} in the HTTP client", Stage.UNKNOWN)
        self.type_name = type_name
