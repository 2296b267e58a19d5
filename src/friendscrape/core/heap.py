"""Keep freed heap memory while a run collects, instead of giving it back after every page.

glibc's malloc hands the top of its heap back to the kernel whenever more than 128 KiB
lies free there, and a collector frees about that much after every page it parses (the
HTML tree, the body, the parsed names). The next page then takes the same memory back
from the kernel one 4 KiB page at a time. On the HTML source that was about 59 page
faults and 160 microseconds of kernel time per page, a third of the collector's CPU;
with the top of the heap kept up to ``TRIM_THRESHOLD`` it is under one fault and about
45 microseconds (benchmarks/collector.py, simulator pages).

The setting is glibc's own (``mallopt(M_TRIM_THRESHOLD)``, the knob behind the
``MALLOC_TRIM_THRESHOLD_`` environment variable); other C libraries (musl, macOS) are
left as they are. Memory in use is not changed: at most ``TRIM_THRESHOLD`` more of freed
memory stays with the process, which reuses it for the next pages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Final

from friendscrape import glibc

TRIM_THRESHOLD: Final = 16 << 20
"""Bytes of free memory at the heap's top kept during a run (16 MiB)."""

_GLIBC_DEFAULT: Final = 128 << 10
_M_TRIM_THRESHOLD: Final = -1  # from glibc's malloc.h


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None under another C library."""
    found = glibc.allocator()
    return None if found is None else found.mallopt


_holders = 0  # blocks inside heap_kept now: a worker's partitions may overlap briefly


@contextlib.contextmanager
def heap_kept(threshold: int = TRIM_THRESHOLD) -> Iterator[bool]:
    """While inside, glibc keeps up to ``threshold`` bytes free at the heap's top; yields
    whether it could be set. On leaving the last block inside (a worker's next partition
    may start while the one before drains), glibc's default trim threshold is set again."""
    global _holders  # noqa: PLW0603 - one setting of the process, counted across its runs
    mallopt = _mallopt()
    changed = mallopt is not None and mallopt(_M_TRIM_THRESHOLD, threshold) == 1
    _holders += 1
    try:
        yield changed
    finally:
        _holders -= 1
        if changed and mallopt is not None and _holders == 0:
            mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
