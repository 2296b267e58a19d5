"""A reference in Python of the split the stores make in SQL (NTILE(n) OVER (ORDER BY
user_id)), for the tests to hold the stores' plans against."""

from __future__ import annotations

from collections.abc import Sequence

from friendscrape.errors import UsageError
from friendscrape.models import Partition
from friendscrape.stores.planning import sort_key


def ntile_sizes(rows: int, count: int) -> list[int]:
    """Group sizes of NTILE(count) over ``rows`` rows: the first ``rows % count`` get one more."""
    if count < 1:
        msg = f"partition count must be at least 1, got {count}"
        raise UsageError(msg)
    base, extra = divmod(rows, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def plan(user_ids: Sequence[str], count: int) -> list[Partition]:
    """The plan for these ids; empty partitions are left out, as NTILE leaves them out."""
    ordered = sorted(user_ids, key=sort_key)
    partitions: list[Partition] = []
    start = 0
    for number, size in enumerate(ntile_sizes(len(ordered), count), start=1):
        if size == 0:
            continue
        chunk = ordered[start : start + size]
        partitions.append(Partition(number, size, chunk[0], chunk[-1]))
        start += size
    return partitions
