"""The SQLite store's thread takes its working memory from the kernel once, not a page at a time.

glibc gives each thread that allocates its own arena of memory (a heap of its own), and
grows it by exactly what an allocation lacks, one ``mprotect`` system call each time:
the store's thread, whose saves fill SQLite's page cache and build 33 KB rows one
allocation at a time, grew its heap 4 KiB at a time, some 450 calls over its first
1,500 x-api results (0.27 a page collected). ``reserve`` grows it once to ``RESERVE``
and frees it again: glibc keeps the grown range usable (it hands the memory back with
``madvise`` and grows into it later without a system call), so the memory in use and
the page faults are as before, only the calls go. It is made by the first save of a
store, in the store's thread; under another C library (musl, macOS) nothing is done.
"""

from __future__ import annotations

import os
from typing import Final

from friendscrape import glibc

RESERVE: Final = 24 << 20
"""Bytes the store's thread's heap is grown to at once (its working size in a run of
x-api lists, some 10-18 MB, with room)."""

_M_MMAP_MAX: Final = -4  # from glibc's malloc.h
_GLIBC_MMAP_MAX: Final = 65536
"""glibc's default number of allocations it may map on their own, outside any heap."""


def reserve(size: int = RESERVE) -> bool:
    """Grow the calling thread's heap to ``size`` bytes in one step and free them again;
    whether it was done. An allocation that large is otherwise mapped on its own, not
    taken from the heap, so glibc maps none for this one allocation and may again after
    it, as many as by default (a setting given in ``MALLOC_MMAP_MAX_`` is left alone:
    nothing is reserved then). Like the run's ``heap_kept``, this stops glibc moving its
    threshold for mapped allocations by itself; the threshold is kept as it is."""
    libc = glibc.allocator()
    if libc is None or os.environ.get("MALLOC_MMAP_MAX_") is not None:
        return False
    if libc.mallopt(_M_MMAP_MAX, 0) != 1:
        return False
    try:
        block = libc.malloc(size)
    finally:
        libc.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)
    if not block:
        return False
    libc.free(block)
    return True
