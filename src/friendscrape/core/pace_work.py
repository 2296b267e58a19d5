"""A partition's work as the leave rule of ``run --partition next`` weighs it
(``PartitionWork``): its expected pages from the plan, or what its claim read left of
it; the base of the worker's own pace (``core/pace_own.py``) and the others'
(``core/pace_others.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PartitionWork:
    """The partitions' work: their expected pages (``weights``, the plan's
    ``partition_pages``); with no weights, each partition weighs 1 and paces are
    seconds a partition."""

    weights: dict[int, float] | None = None  # expected pages a partition (None: not read)
    # Expected pages left of the partitions the latest claim read could weigh (partly
    # collected ones: a dead holder's, say), at the latest claim's read.
    left: dict[int, float] = field(default_factory=dict)

    def work(self, partition: int) -> float:
        """A partition's expected work (1 with no weights; the mean where it has none)."""
        if not self.weights:
            return 1.0
        found = self.weights.get(partition)
        return found if found is not None else self.typical()

    def work_left(self, partition: int) -> float:
        """A partition's expected work still to do: the pages left of its pending users
        where the latest claim read them (a partition taken over from a dead holder, or
        partly collected, is not its whole plan), else its plan weight (``work``)."""
        if not self.weights:
            return 1.0
        found = self.left.get(partition)
        return found if found is not None else self.work(partition)

    def typical(self) -> float:
        """A partition's mean work (1 with no weights)."""
        if not self.weights:
            return 1.0
        return sum(self.weights.values()) / len(self.weights)
