"""The ledger's single writer: one task batches events and commits them in a thread.

Workers never touch SQLite: they hand events to :meth:`Writer.put` (no
wait) or :meth:`Writer.commit` (wait until durable), and one task appends
them in batches of up to :data:`WRITER_BATCH` events, so that commits never
interleave and a batch costs one fsync.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio

from erasure.errors import LedgerWriteError
from erasure.ledger import Event

WRITER_BATCH = 4096  # events per commit at most


class Appender(Protocol):
    """What the writer needs of a ledger: :meth:`erasure.ledger.Ledger.append`."""

    def append(self, events: Sequence[Event]) -> None: ...


class Writer:
    """The ledger's single writer: batches events and commits them in a thread."""

    def __init__(self, ledger: Appender, on_commit: Callable[[Sequence[Event]], None]) -> None:
        self._ledger = ledger
        self._on_commit = on_commit
        self._send, self._recv = anyio.create_memory_object_stream[
            tuple[Sequence[Event], anyio.Event | None]
        ](math.inf)
        self.error: LedgerWriteError | None = None
        self.on_error: Callable[[LedgerWriteError], None] = lambda exc: None

    async def run(self) -> None:
        async with self._recv:
            async for events, waiter in self._recv:
                batch = list(events)
                waiters = [waiter] if waiter else []
                while len(batch) < WRITER_BATCH:
                    try:
                        more, w = self._recv.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    batch.extend(more)
                    if w:
                        waiters.append(w)
                if self.error is None and batch:
                    try:
                        await anyio.to_thread.run_sync(self._ledger.append, batch)
                    except LedgerWriteError as exc:
                        self.error = exc
                        self.on_error(exc)
                    else:
                        self._on_commit(batch)
                for w in waiters:
                    w.set()

    async def commit(self, events: Sequence[Event]) -> None:
        """Queue ``events`` and return once they are durable (or raise)."""
        if self.error is not None:
            raise self.error
        done = anyio.Event()
        await self._send.send((events, done))
        await done.wait()
        if self.error is not None:
            raise self.error

    def put(self, events: Sequence[Event]) -> None:
        """Queue ``events`` without waiting for the commit."""
        if events:
            self._send.send_nowait((events, None))

    async def close(self) -> None:
        await self._send.aclose()
