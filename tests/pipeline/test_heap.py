"""A run keeps freed heap memory: pages parsed one after another fault no memory back in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Run in a fresh process, as `friendscrape run` is: a long-lived process (this test
# session) has its heap's top held by other objects, and glibc may have raised its own
# thresholds, so whether freed memory goes back there depends on what ran before.
CHURN = """
import json, resource
from friendscrape.core.heap import heap_kept

def churn():
    # 30 rounds of what a page does to the heap: some megabytes taken in blocks under
    # the mmap threshold, written, and all freed again.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        blocks = [b"x" * 100_000 for _ in range(40)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

churn()
given_back = churn()
with heap_kept() as changed:
    churn()
    kept = churn()
print(json.dumps({"changed": changed, "given_back": given_back, "kept": kept, "after": churn()}))
"""


def test_freed_memory_stays_with_the_process_while_kept() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHURN], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    faults = json.loads(out)
    if not faults["changed"]:
        pytest.skip("not glibc: its allocator setting does not apply")
    # 30 rounds of 4 MB faulted back in is some 30,000 faults; kept, next to none.
    assert faults["given_back"] > 5_000
    assert faults["kept"] < faults["given_back"] / 20
    # Left, glibc's default is back: memory is given back and faulted in again.
    assert faults["after"] > 5_000
