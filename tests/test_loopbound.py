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


def _counting_tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``_counting``, and the look-ups of ``current_task`` asked without a loop (the
    task's loop found by looking the running one up), as asyncio's timeouts ask."""
    calls = _counting(monkeypatch)
    real = asyncio.current_task

    def counted(loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task[Any] | None:
        if loop is None:
            calls[0] += 1
        return real(loop)

    monkeypatch.setattr(asyncio, "current_task", counted)
    monkeypatch.setattr(asyncio.tasks, "current_task", counted)
    return calls


def test_asyncio_timeout_looks_the_loop_up_where_a_deadline_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        calls = _counting_tasks(monkeypatch)
        for _ in range(5):
            async with asyncio.timeout_at(loop.time() + 60):
                await asyncio.sleep(0)
        theirs, calls[0] = calls[0], 0
        for _ in range(5):
            async with loopbound.Deadline(loop, loop.time() + 60):
                await asyncio.sleep(0)
        return theirs, calls[0]

    theirs, ours = asyncio.run(main())
    assert theirs >= 10  # the counting sees asyncio's: two a timeout
    assert ours == 0


def test_a_deadline_that_passes_ends_its_block_with_timeout_error() -> None:
    async def main() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with loopbound.Deadline(loop, loop.time() + 0.01) as late:
                await asyncio.Event().wait()
        async with loopbound.Deadline(loop, loop.time() + 60) as kept:
            await asyncio.sleep(0)
        pulled = loopbound.Deadline(loop, None)

        async def pulled_in() -> None:
            async with pulled:
                pulled.reschedule(loop.time() - 1)  # already past: expires next turn
                await asyncio.Event().wait()

        with pytest.raises(TimeoutError):
            await pulled_in()
        return late.expired(), kept.expired(), pulled.expired()

    assert asyncio.run(main()) == (True, False, True)


def test_a_cancel_from_outside_stays_a_cancel_under_a_deadline() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        deadline = loopbound.Deadline(loop, loop.time() + 60)

        async def guarded() -> None:
            async with deadline:
                await asyncio.Event().wait()

        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return deadline.expired()

    assert asyncio.run(main()) is False


def test_a_deadline_is_rescheduled_only_while_entered() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadline = loopbound.Deadline(loop, loop.time() + 60)
        with pytest.raises(RuntimeError, match="created"):
            deadline.reschedule(None)
        async with deadline:
            pass
        with pytest.raises(RuntimeError, match="exited"):
            deadline.reschedule(None)

    asyncio.run(main())


def test_the_running_loop_is_looked_up_once_while_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holder = loopbound.RunningLoop()

    async def main() -> tuple[bool, int]:
        calls = _counting(monkeypatch)
        same = all(holder.get() is asyncio.get_running_loop() for _ in range(5))
        return same, calls[0]

    same, lookups = asyncio.run(main())
    assert same
    assert lookups == 1 + 5  # its one, and the test's own five
    # A new loop once the one before stopped.
    assert asyncio.run(main())[0]
