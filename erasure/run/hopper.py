"""The hopper: work items whose intents are committed, waiting for a worker."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import anyio

from erasure.altcraft import DeleteRequest


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One key to send: its request, every request id naming it, and its doubt."""

    key: str
    request: DeleteRequest
    request_ids: Sequence[str | None]
    in_doubt: bool  # an earlier run's request may have reached the service unanswered


class Hopper:
    """Items whose intents are committed, waiting for a worker.

    A plain deque instead of an anyio memory stream: a stream costs a trip
    through the scheduler and a task lookup per item, about an eighth of a
    run's CPU at thousands of deletes a second. A worker takes an item
    without yielding and waits only when the hopper is empty; the feeder
    waits while it holds ``low`` items or more, so that intents are
    committed a little ahead of the workers and no further.
    """

    def __init__(self, low: int) -> None:
        self._items: deque[WorkItem] = deque()
        self._low = low
        self._closed = False
        # Events are replaced only once set: a waiter always waits on the current one.
        self._more = anyio.Event()  # items arrived, or the hopper closed
        self._room = anyio.Event()  # the items fell below ``low``

    def put_many(self, items: Iterable[WorkItem]) -> None:
        self._items.extend(items)
        self._more.set()

    def close(self) -> None:
        self._closed = True
        self._more.set()

    async def get(self) -> WorkItem | None:
        """The next item; None once the hopper is closed and empty."""
        while True:
            if self._items:
                item = self._items.popleft()
                if len(self._items) < self._low:
                    self._room.set()
                return item
            if self._closed:
                return None
            if self._more.is_set():
                self._more = anyio.Event()
            await self._more.wait()

    async def wait_for_room(self) -> None:
        while len(self._items) >= self._low:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()

    def drain(self) -> list[WorkItem]:
        items = list(self._items)
        self._items.clear()
        return items
