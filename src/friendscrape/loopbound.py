"""asyncio's queue, lock, event, bounded semaphore and deadline that look their event
loop up once.

asyncio's own look up the running loop each time a task waits on them, and on Python
3.11 each look-up is a ``getpid`` system call (the loop's holder checks that the process
has not forked since). A run waits on a few of them for about every user it collects
(the writer for the next result, the feeder for a free fetcher, requests in a host's
line): some 0.15-0.35 ``getpid`` a page on x-api, more on a busy machine, where waits
are more frequent. These keep the loop they first waited in while it runs; one used
again in another loop once that one has stopped (tests that start a loop per case)
takes the new loop. They are used on one loop at a time, as asyncio's are.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RunningLoop:
    """The running loop, looked up at the first call and again only once it stopped
    (``asyncio.get_running_loop`` is a ``getpid`` each time)."""

    _running: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        loop = self._running
        if loop is None or not loop.is_running():
            loop = self._running = asyncio.get_running_loop()
        return loop


class _LoopOnce:
    """Mixin: the running loop, looked up at the first wait and again only once it
    stopped (asyncio's own ``_get_loop`` looks it up at every wait). Held in a
    ``RunningLoop`` made at the first wait: asyncio's queue has a ``get`` of its own."""

    _holder: RunningLoop | None = None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        holder = self._holder
        if holder is None:
            holder = self._holder = RunningLoop()
        return holder.get()


class Queue(_LoopOnce, asyncio.Queue[T], Generic[T]):
    """``asyncio.Queue`` that looks its loop up once (see the module's docstring)."""


class Lock(_LoopOnce, asyncio.Lock):
    """``asyncio.Lock`` that looks its loop up once (see the module's docstring)."""


class Event(_LoopOnce, asyncio.Event):
    """``asyncio.Event`` that looks its loop up once (see the module's docstring)."""


class BoundedSemaphore(_LoopOnce, asyncio.BoundedSemaphore):
    """``asyncio.BoundedSemaphore`` that looks its loop up once (see the module's
    docstring)."""


class Deadline:
    """``asyncio.timeout_at(when)`` on the caller's ``loop``: the same expiry,
    ``when``, ``expired`` and ``reschedule``, and a ``TimeoutError`` out of the block
    it cancelled. asyncio's looks the running loop up twice as it is entered (its task,
    its timer): four ``getpid`` a save for the run's writer, which sets two a batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float | None) -> None:
        self._loop = loop
        self._when = when
        self._timer: asyncio.Handle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._state = "created"  # then entered, expiring, expired or exited

    def when(self) -> float | None:
        """The loop time it expires at (None: never)."""
        return self._when

    def expired(self) -> bool:
        """Whether it expired (cancelled the block it guards)."""
        return self._state in ("expiring", "expired")

    def reschedule(self, when: float | None) -> None:
        """Expire at ``when`` instead (None: never); only while entered."""
        if self._state != "entered":
            msg = f"cannot reschedule a deadline {self._state}"
            raise RuntimeError(msg)
        self._when = when
        if self._timer is not None:
            self._timer.cancel()
        if when is None:
            self._timer = None
        elif when <= self._loop.time():
            self._timer = self._loop.call_soon(self._on_timeout)
        else:
            self._timer = self._loop.call_at(when, self._on_timeout)

    async def __aenter__(self) -> Deadline:
        if self._state != "created":
            msg = "a deadline is entered once"
            raise RuntimeError(msg)
        task = asyncio.current_task(self._loop)  # given the loop: no look-up
        if task is None:
            msg = "a deadline is used inside a task"
            raise RuntimeError(msg)
        self._state = "entered"
        self._task = task
        self._cancelling = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._state == "expiring":
            self._state = "expired"
            task = self._task  # set once entered
            # Its own cancel, not another's: the block's cancel becomes the timeout.
            if (
                task is not None
                and task.uncancel() <= self._cancelling
                and exc_type is asyncio.CancelledError
            ):
                raise TimeoutError from exc
        elif self._state == "entered":
            self._state = "exited"

    def _on_timeout(self) -> None:
        if self._task is not None:  # set once entered, before the timer
            self._task.cancel()
        self._state = "expiring"
        self._timer = None
