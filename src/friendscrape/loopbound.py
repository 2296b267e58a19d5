"""asyncio's queue, lock, event and bounded semaphore that look their event loop up once.

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
from typing import Generic, TypeVar

T = TypeVar("T")


class _LoopOnce:
    """Mixin: the running loop, looked up at the first wait and again only once it
    stopped (asyncio's own ``_get_loop`` looks it up at every wait)."""

    _running: asyncio.AbstractEventLoop | None = None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._running
        if loop is None or not loop.is_running():
            loop = self._running = asyncio.get_running_loop()
        return loop


class Queue(_LoopOnce, asyncio.Queue[T], Generic[T]):
    """``asyncio.Queue`` that looks its loop up once (see the module's docstring)."""


class Lock(_LoopOnce, asyncio.Lock):
    """``asyncio.Lock`` that looks its loop up once (see the module's docstring)."""


class Event(_LoopOnce, asyncio.Event):
    """``asyncio.Event`` that looks its loop up once (see the module's docstring)."""


class BoundedSemaphore(_LoopOnce, asyncio.BoundedSemaphore):
    """``asyncio.BoundedSemaphore`` that looks its loop up once (see the module's
    docstring)."""
