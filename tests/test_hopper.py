"""The runner's hopper: no item lost or given twice, no worker left waiting, bounded lead."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from erasure.altcraft import DeleteRequest
from erasure.run import Hopper, WorkItem

pytestmark = pytest.mark.anyio


def items(start: int, n: int) -> list[WorkItem]:
    return [
        WorkItem(f"k{i}", DeleteRequest(1, "email", f"u{i}@x.ru"), [None], False)
        for i in range(start, start + n)
    ]


async def test_every_item_reaches_exactly_one_worker_and_every_worker_ends() -> None:
    hopper = Hopper(low=4)
    taken: list[str] = []
    lead: list[int] = []

    async def worker() -> None:
        while (item := await hopper.get()) is not None:
            taken.append(item.key)
            await anyio.lowlevel.checkpoint()

    async def feeder() -> None:
        try:
            for start in range(0, 500, 7):
                await hopper.wait_for_room()
                lead.append(len(hopper._items))
                hopper.put_many(items(start, min(7, 500 - start)))
                await anyio.lowlevel.checkpoint()
        finally:
            hopper.close()

    with anyio.fail_after(5):  # a lost wake-up would hang here
        async with anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(worker)
            tg.start_soon(feeder)
    assert sorted(taken) == sorted(f"k{i}" for i in range(500))
    assert max(lead) < 4  # the feeder only adds once fewer than `low` wait


async def test_workers_waiting_on_an_empty_hopper_all_wake_on_close() -> None:
    hopper = Hopper(low=1)
    ended = 0

    async def worker() -> None:
        nonlocal ended
        assert await hopper.get() is None
        ended += 1

    with anyio.fail_after(2):  # a close that wakes nobody would hang here
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(worker)
            # every worker is parked in get(), so close() must wake them, not find them late
            await wait_all_tasks_blocked()
            assert ended == 0
            hopper.close()
    assert ended == 8


async def test_items_put_while_workers_wait_each_wake_one_worker_and_the_rest_wait_on() -> None:
    hopper = Hopper(low=1)
    taken: list[str] = []

    async def worker() -> None:
        while (item := await hopper.get()) is not None:
            taken.append(item.key)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
            await wait_all_tasks_blocked()
            hopper.put_many(items(0, 3))
            await wait_all_tasks_blocked()  # the woken workers took the items and wait again
            assert sorted(taken) == ["k0", "k1", "k2"]
            assert hopper.drain() == []
            hopper.put_many(items(3, 2))
            await wait_all_tasks_blocked()
            assert sorted(taken) == ["k0", "k1", "k2", "k3", "k4"]
            hopper.close()


async def test_drain_returns_what_no_worker_took() -> None:
    hopper = Hopper(low=10)
    hopper.put_many(items(0, 5))
    first = await hopper.get()
    assert first is not None and first.key == "k0"
    assert [i.key for i in hopper.drain()] == ["k1", "k2", "k3", "k4"]
    hopper.close()
    assert await hopper.get() is None
