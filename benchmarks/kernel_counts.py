"""What the kernel sees of one collection: system calls, minor page faults, loop wake-ups.

benchmarks/collector.py runs each client (friendscrape and the two reference clients) in
a fresh process; the client wraps its collection in ``Window`` and adds the figures to
its JSON line:

- ``minflt``: minor page faults of the process over the collection (``getrusage``), and
  ``minflt_warm`` over its pages after the first ``WARM_UP_PAGES`` (``warm_pages`` of
  them): a client's memory grows to its working size over its first pages, once a
  process (friendscrape's some 28 MB: SQLite's page cache, filled by the first five
  saves, the store's and the event loop's heaps and the results waiting for the writer;
  some 6,700 faults over its first 700 x-api pages, a few dozen over the 1,000 after),
  which a collection this short would count per page. The client calls ``page_done``
  after each page;
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
WARM_UP_PAGES = 800
"""Pages collected before ``minflt_warm`` counts (under half of the x-api floor's, a
fifth of the HTML source's)."""
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


_open: list[Window] = []  # the window open now, if any (``page_done``)


def page_done() -> None:
    """One page collected, in the open window (if any): its page faults are counted again
    from the ``WARM_UP_PAGES``th on (``minflt_warm``)."""
    if _open:
        _open[-1].page()


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Window:
    """``with Window() as w: ...`` then ``w.figures()``: the counts over the block."""

    def __init__(self, warm_up: int = WARM_UP_PAGES) -> None:
        self._wakeups = _Wakeups()
        self._minflt = 0
        self._woken = 0
        self._warm_up = warm_up
        self._pages = 0
        self._warm_minflt: int | None = None  # at the end of the warm-up
        self._minflt_warm = 0

    def page(self) -> None:
        self._pages += 1
        if self._pages == self._warm_up:
            self._warm_minflt = _minflt()

    def __enter__(self) -> Window:
        self._wakeups.install()
        _mark("start")
        self._minflt = _minflt()
        self._woken = _Wakeups.count
        _open.append(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = _minflt()
        self._minflt = end - self._minflt
        if self._warm_minflt is not None:
            self._minflt_warm = end - self._warm_minflt
        self._woken = _Wakeups.count - self._woken
        _open.remove(self)
        _mark("end")
        self._wakeups.remove()

    def figures(self) -> dict[str, float]:
        return {
            "minflt": self._minflt,
            "minflt_warm": self._minflt_warm,
            "warm_pages": max(self._pages - self._warm_up, 0),
            "wakeups": self._woken,
        }


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
