"""What the kernel sees of one collection: system calls, minor page faults, loop wake-ups.

benchmarks/collector.py runs each client (friendscrape and the two reference clients) in
a fresh process; the client wraps its collection in ``Window`` and adds the figures to
its JSON line:

- ``minflt``: minor page faults of the process over the collection (``getrusage``);
- ``wakeups``: how often the event loop asked the kernel for events (calls of the
  epoll selector's ``select``, counted in the process: one per turn of the loop).

System calls are counted from outside: the collector runs the client under
``strace -f`` when it is installed, and ``syscalls_between`` counts the calls of every
thread between the two marks the window leaves in the trace (a ``stat`` of a path that
does not exist), so start-up and imports are left out for every client alike.
Benchmarks only: the product never imports it.
"""

from __future__ import annotations

import collections
import contextlib
import re
import resource
import selectors
from pathlib import Path
from types import TracebackType
from typing import Any

MARK = "/friendscrape-bench-mark-"
_CALL = re.compile(r"^(?:\[pid\s+)?\d+\]?\s+(\w+)\(")


def _mark(label: str) -> None:
    """A system call strace shows with ``label`` in it, and nothing else."""
    with contextlib.suppress(FileNotFoundError):
        Path(MARK + label).stat()


class _Wakeups:
    """Counts the epoll selector's ``select`` calls made while installed."""

    count = 0

    def __init__(self) -> None:
        self._original = selectors.EpollSelector.select

    def install(self) -> None:
        original = self._original

        def select(selector: selectors.EpollSelector, timeout: float | None = None) -> Any:
            _Wakeups.count += 1
            return original(selector, timeout)

        selectors.EpollSelector.select = select  # type: ignore[method-assign]

    def remove(self) -> None:
        selectors.EpollSelector.select = self._original  # type: ignore[method-assign]


class Window:
    """``with Window() as w: ...`` then ``w.figures()``: the counts over the block."""

    def __init__(self) -> None:
        self._wakeups = _Wakeups()
        self._minflt = 0
        self._woken = 0

    def __enter__(self) -> Window:
        self._wakeups.install()
        _mark("start")
        self._minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        self._woken = _Wakeups.count
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self._minflt
        self._woken = _Wakeups.count - self._woken
        _mark("end")
        self._wakeups.remove()

    def figures(self) -> dict[str, float]:
        return {"minflt": self._minflt, "wakeups": self._woken}


def syscalls_between(trace: Path) -> collections.Counter[str]:
    """System calls by name in an ``strace -f -o`` file, between the window's marks."""
    counts: collections.Counter[str] = collections.Counter()
    inside = False
    with trace.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if MARK in line:
                if inside:
                    break
                inside = True
                continue
            if inside and (call := _CALL.match(line)) is not None:
                counts[call.group(1)] += 1
    return counts
