"""asyncio's queue, lock, event and bounded semaphore as the run uses them: they look
their loop up at the first wait only (each look-up is a getpid system call on Python
3.11), behave as asyncio's own, and take a new loop once the one before has stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from friendscrape import loopbound


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the running loop's look-ups by either name asyncio's code uses."""
    calls = [0]
    real, real_private = asyncio.get_running_loop, asyncio.events._get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        calls[0] += 1
        return real()

    def counted_private() -> asyncio.AbstractEventLoop | None:
        calls[0] += 1
        return real_private()

    monkeypatch.setattr(asyncio, "get_running_loop", counted)
    monkeypatch.setattr(asyncio.events, "get_running_loop", counted)
    monkeypatch.setattr(asyncio.events, "_get_running_loop", counted_private)
    return calls


async def _waits_on_queue(queue: asyncio.Queue[int], times: int) -> list[int]:
    async def put_soon(value: int) -> None:
        await asyncio.sleep(0)
        queue.put_nowait(value)

    got = []
    for n in range(times):
        putter = asyncio.ensure_future(put_soon(n))
        got.append(await queue.get())  # waits: the queue is empty
        await putter
    return got


async def _waits_on_lock(lock: asyncio.Lock, times: int) -> int:
    async def hold() -> None:
        async with lock:
            await asyncio.sleep(0)

    waited = 0
    for _ in range(times):
        holder = asyncio.ensure_future(hold())
        await asyncio.sleep(0)
        assert lock.locked()
        async with lock:  # waits for the holder
            waited += 1
        await holder
    return waited


async def _waits_on_event(event: asyncio.Event, times: int) -> int:
    woke = 0
    for _ in range(times):
        event.clear()
        asyncio.get_event_loop().call_soon(event.set)
        await event.wait()
        woke += 1
    return woke


async def _waits_on_slots(slots: asyncio.BoundedSemaphore, times: int) -> int:
    taken = 0
    for _ in range(times):
        await slots.acquire()  # the one slot
        asyncio.get_event_loop().call_soon(slots.release)
        await slots.acquire()  # waits until it is released
        slots.release()
        taken += 1
    return taken


CASES: list[tuple[Callable[[], Any], Callable[[Any, int], Awaitable[Any]], Any]] = [
    (loopbound.Queue[int], _waits_on_queue, [0, 1, 2, 3, 4]),
    (loopbound.Lock, _waits_on_lock, 5),
    (loopbound.Event, _waits_on_event, 5),
    (lambda: loopbound.BoundedSemaphore(1), _waits_on_slots, 5),
]


@pytest.mark.parametrize(("make", "wait", "expected"), CASES)
def test_each_looks_its_loop_up_once_for_many_waits(
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[], Any],
    wait: Callable[[Any, int], Awaitable[Any]],
    expected: Any,
) -> None:
    async def main() -> tuple[Any, int]:
        primitive = make()
        calls = _counting(monkeypatch)
        got = await wait(primitive, 5)
        return got, calls[0]

    got, lookups = asyncio.run(main())
    assert got == expected
    # asyncio's own would look it up at each of the five waits (plus the test's own
    # ensure_future and sleep calls, which are not counted: they use other names).
    assert lookups == 1


@pytest.mark.parametrize(("make", "wait", "expected"), CASES)
def test_each_takes_a_new_loop_once_the_one_before_stopped(
    make: Callable[[], Any], wait: Callable[[Any, int], Awaitable[Any]], expected: Any
) -> None:
    primitive = make()
    assert asyncio.run(wait(primitive, 5)) == expected
    assert asyncio.run(wait(primitive, 5)) == expected


def test_a_cancelled_wait_gives_its_slot_back() -> None:
    async def main() -> bool:
        slots = loopbound.BoundedSemaphore(1)
        await slots.acquire()
        waiter = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        slots.release()
        return slots.locked()

    assert asyncio.run(main()) is False
