"""A run keeps freed heap memory: pages parsed one after another fault no memory back in."""

from __future__ import annotations

import resource

import pytest

from friendscrape.core.heap import heap_kept


def faults_of_page_like_churn() -> int:
    """Minor page faults of 30 rounds of what a page does to the heap: some megabytes
    taken in blocks under the mmap threshold, written, and all freed again."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        blocks = [b"x" * 100_000 for _ in range(40)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_memory_stays_with_the_process_while_kept() -> None:
    faults_of_page_like_churn()  # a first round may grow the heap either way
    given_back = faults_of_page_like_churn()
    with heap_kept() as changed:
        if not changed:
            pytest.skip("not glibc: its allocator setting does not apply")
        faults_of_page_like_churn()
        kept = faults_of_page_like_churn()
    # 30 rounds of 4 MB faulted back in is some 30,000 faults; kept, next to none.
    assert given_back > 5_000
    assert kept < given_back / 20
    # Left, the default is back: memory is given back and faulted in again.
    assert faults_of_page_like_churn() > 5_000
