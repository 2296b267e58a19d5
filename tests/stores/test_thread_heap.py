"""The SQLite store's thread grows its heap to its working size at once (glibc only), and
large allocations are mapped on their own afterwards as before; each case runs in a
process of its own, as glibc's settings are the process's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GLIBC = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")

_READ_MAPS = """
def writable():
    out = {}
    for line in open("/proc/self/maps"):
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if fields[1].startswith("rw"):
            out[(lo, hi)] = fields[5] if len(fields) > 5 else ""
    return out
"""


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "case.py"
    script.write_text(_READ_MAPS + textwrap.dedent(code), encoding="utf-8")
    command = [sys.executable, str(script)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's heaps only")
def test_a_thread_grows_its_heap_to_the_reserve_in_one_step(tmp_path: Path) -> None:
    out = _run(
        """
        import threading
        from friendscrape.stores import thread_heap

        seen = []
        def work():
            before = writable()
            seen.append(thread_heap.reserve())
            grown = [hi - lo for lo, hi in set(writable()) - set(before)]
            seen.append(max(grown, default=0) >= thread_heap.RESERVE)
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        print(*seen)
        """,
        tmp_path,
    )
    assert out == "True True"


@pytest.mark.skipif(not GLIBC, reason="glibc's heaps only")
def test_large_allocations_are_mapped_on_their_own_after_a_reserve(tmp_path: Path) -> None:
    out = _run(
        """
        import threading
        from friendscrape.stores import thread_heap

        thread = threading.Thread(target=thread_heap.reserve)
        thread.start()
        thread.join()
        before = writable()
        block = bytearray(64 << 20)
        print(any(
            hi - lo >= 64 << 20 and name != "[heap]"
            for (lo, hi), name in writable().items() if (lo, hi) not in before
        ))
        """,
        tmp_path,
    )
    assert out == "True"


def test_nothing_is_reserved_when_the_mapped_allocations_are_set_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "100")
    out = _run(
        """
        from friendscrape.stores import thread_heap
        print(thread_heap.reserve())
        """,
        tmp_path,
    )
    assert out == "False"
