"""glibc's allocator, reached through ctypes when the process's C library is glibc.

The heap settings of a run (``core.heap``) and of the SQLite store's thread
(``stores.thread_heap``) are glibc's own; under another C library (musl, macOS) there
is nothing to set and ``allocator`` gives None.
"""

from __future__ import annotations

import ctypes
import functools
import os


@functools.cache
def allocator() -> ctypes.CDLL | None:
    """The C library with ``mallopt``, ``malloc`` and ``free`` typed, when it is glibc."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # no such name here: not glibc
        return None
    if not libc or not libc.startswith("glibc"):
        return None
    try:
        found = ctypes.CDLL(None)
        found.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        found.mallopt.restype = ctypes.c_int
        found.malloc.argtypes = (ctypes.c_size_t,)
        found.malloc.restype = ctypes.c_void_p
        found.free.argtypes = (ctypes.c_void_p,)
        found.free.restype = None
    except (OSError, AttributeError):
        return None
    return found
