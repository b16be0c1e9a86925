"""A channel's unrecorded slots (worker.slots.Slots): bounded, first come first served, and
no slot lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from worker.slots import Slots

WAIT = 5.0  # bound on every wait of these tests


async def _waiting(slots: Slots, order: list[str], name: str) -> None:
    await slots.take()
    order.append(name)


async def _passing_on(slots: Slots, order: list[str], name: str) -> None:
    await slots.take()
    order.append(name)
    slots.give()


async def _until_waiting(slots: Slots, count: int) -> None:
    """One pass of the loop: the tasks created before it run up to their wait, in order."""
    await asyncio.sleep(0)
    assert len(slots._waiters) == count


async def test_no_more_than_size_are_taken_until_one_is_given_back() -> None:
    slots = Slots(2)
    assert slots.take_now() and slots.take_now()
    assert not slots.take_now()
    order: list[str] = []
    third = asyncio.create_task(_waiting(slots, order, "third"))
    await _until_waiting(slots, 1)
    assert order == [] and slots.free == 0
    slots.give()
    async with asyncio.timeout(WAIT):
        await third
    assert order == ["third"] and slots.free == 0
    slots.give()
    slots.give()
    assert slots.free == 2


async def test_waiters_get_slots_in_the_order_they_asked_and_none_overtakes_them() -> None:
    slots = Slots(1)
    await slots.take()
    order: list[str] = []
    tasks = [asyncio.create_task(_passing_on(slots, order, n)) for n in ("a", "b", "c")]
    await _until_waiting(slots, 3)
    slots.give()
    assert not slots.take_now()  # the slot is a's, though a has not run yet
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert slots.free == 1


@pytest.mark.parametrize("handed", [False, True], ids=["while-waiting", "handed-a-slot"])
async def test_a_cancelled_waiter_holds_no_slot_and_loses_none(handed: bool) -> None:
    slots = Slots(1)
    await slots.take()
    order: list[str] = []
    first = asyncio.create_task(_waiting(slots, order, "first"))
    second = asyncio.create_task(_waiting(slots, order, "second"))
    await _until_waiting(slots, 2)
    if handed:
        slots.give()  # first's future has the slot, but first has not run yet: it passes it on
    first.cancel()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(first, return_exceptions=True)
        if not handed:
            slots.give()
        await second
    assert first.cancelled() and order == ["second"]
    slots.give()
    assert slots.free == 1


async def test_a_cancelled_waiter_skipped_by_a_give_is_not_handed_the_slot() -> None:
    slots = Slots(1)
    await slots.take()
    order: list[str] = []
    gone = asyncio.create_task(_waiting(slots, order, "gone"))
    await _until_waiting(slots, 1)
    gone.cancel()  # its future is cancelled now; gone has not run to handle it yet
    slots.give()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(gone, return_exceptions=True)
    assert gone.cancelled() and order == []
    assert slots.free == 1
