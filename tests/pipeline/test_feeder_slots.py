"""The feeder's wait for a fetcher slot: a stop ends it without a task per user, gives
no slot away, and leaves the feeder's task uncancelled; any other cancel still ends it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from friendscrape.core.pipeline import PartitionRun, _SlotWait


async def _take(stop: asyncio.Event, slots: asyncio.BoundedSemaphore) -> bool:
    """A slot taken as the feeder takes it (the stop wired as ``_feed`` wires it)."""
    run: Any = SimpleNamespace(_stop=stop)
    stopped = asyncio.ensure_future(stop.wait())
    waiting = _SlotWait(asyncio.current_task())
    stopped.add_done_callback(waiting.interrupt)
    try:
        return await PartitionRun._acquire_or_stop(run, slots, waiting)
    finally:
        stopped.remove_done_callback(waiting.interrupt)
        stopped.cancel()


async def _full(slots: asyncio.BoundedSemaphore, count: int) -> None:
    for _ in range(count):
        await slots.acquire()


async def test_a_stop_ends_the_wait_for_a_slot_and_keeps_the_task_uncancelled() -> None:
    stop, slots = asyncio.Event(), asyncio.BoundedSemaphore(2)
    await _full(slots, 2)
    cancelling: list[int] = []

    async def feeder() -> bool:
        took = await _take(stop, slots)
        task = asyncio.current_task()
        assert task is not None
        cancelling.append(task.cancelling())
        return took

    task = asyncio.ensure_future(feeder())
    while not slots._waiters:  # the feeder waits for a slot
        await asyncio.sleep(0)
    stop.set()
    assert await task is False
    assert cancelling == [0]
    slots.release()
    slots.release()  # both slots back: none was taken by the stopped wait
    with pytest.raises(ValueError, match="released too many times"):
        slots.release()


async def test_a_freed_slot_is_taken() -> None:
    stop, slots = asyncio.Event(), asyncio.BoundedSemaphore(1)
    await _full(slots, 1)
    task = asyncio.ensure_future(_take(stop, slots))
    while not slots._waiters:
        await asyncio.sleep(0)
    slots.release()
    assert await task is True
    assert slots.locked()


async def test_a_slot_freed_as_the_stop_comes_is_given_back() -> None:
    stop, slots = asyncio.Event(), asyncio.BoundedSemaphore(1)
    await _full(slots, 1)
    task = asyncio.ensure_future(_take(stop, slots))
    while not slots._waiters:
        await asyncio.sleep(0)
    slots.release()
    stop.set()
    assert await task is False
    assert not slots.locked()


async def test_a_cancel_of_the_run_still_ends_the_feeder() -> None:
    stop, slots = asyncio.Event(), asyncio.BoundedSemaphore(1)
    await _full(slots, 1)
    task = asyncio.ensure_future(_take(stop, slots))
    while not slots._waiters:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    slots.release()
    assert not slots.locked()
