"""How fast this worker of ``run --partition next`` gets through work (``OwnPace``):
the seconds each of its partitions took over their work, and, before any ended, the
work its runs fetched over the seconds it held a partition."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from friendscrape.core.pace_work import PartitionWork

# Share of a typical partition's work this worker must have fetched before its pace is
# measured from its pages: the first pages of a partition come before its heavy users'.
MIN_MEASURED = 0.2


@dataclass(slots=True)
class OwnPace(PartitionWork):
    """This worker's own pace, from its partitions begun, ended and given back."""

    own: list[float] = field(default_factory=list)  # seconds of each of its partitions
    own_work: list[float] = field(default_factory=list)  # their work (missing: 1 each)
    expected: dict[int, float] = field(default_factory=dict)  # of its partitions under way
    since: float | None = None  # monotonic time its latest partition started
    current: float = 1.0  # the work of its latest partition
    # Its partitions under way: each one's expected work and a reader of the work its
    # run fetched so far (``begun``'s ``done``), so its pace is known from its pages
    # before any of its partitions ended; the work its ended ones fetched; the seconds
    # it held at least one partition (ended spans, and when the current one began).
    meters: dict[int, tuple[float, Callable[[], float]]] = field(default_factory=dict)
    fetched: float = 0.0
    busy: float = 0.0
    busy_since: float | None = None

    def begun(self, partition: int | None = None, done: Callable[[], float] | None = None) -> None:
        """This worker started ``partition`` just now; ``done`` reads the work its run
        fetched so far, in the unit of ``weights`` (the pages fetched and the users done:
        a user's expected pages are its list's pages plus one)."""
        self.since = time.monotonic()
        self.current = 1.0 if partition is None else self.work_left(partition)
        if partition is not None:
            self.expected[partition] = self.current
        if partition is not None and done is not None:
            self.meters[partition] = (self.current, done)
            if self.busy_since is None:
                self.busy_since = self.since

    def finished(self, seconds: float, partition: int | None = None) -> None:
        """One of this worker's partitions ended after ``seconds``."""
        self.own.append(seconds)
        if partition is None:
            self.own_work.append(1.0)
        else:
            work = self.expected.pop(partition, None)
            self.own_work.append(self.work(partition) if work is None else work)
        meter = self.meters.pop(partition, None) if partition is not None else None
        if meter is not None:
            self.fetched += meter[1]()
            self._held_until_now()

    def dropped(self, partition: int) -> None:
        """``partition``, begun, was given back before any of it was fetched: neither
        its seconds nor its work count."""
        self.expected.pop(partition, None)
        if self.meters.pop(partition, None) is not None:
            self._held_until_now()

    def _held_until_now(self) -> None:
        """A metered partition ended or was dropped: with none left under way, the span
        it held a partition ends now and counts in ``busy``."""
        if not self.meters and self.busy_since is not None:
            self.busy += time.monotonic() - self.busy_since
            self.busy_since = None

    def measured(self, unstarted: frozenset[int] = frozenset()) -> tuple[float, float] | None:
        """(this worker's seconds a unit of work, the work left of its partitions under
        way), from the work its runs fetched over the seconds it held a partition (None:
        too little fetched yet, or no weights to compare). Counted over its held time,
        not summed over partitions, so a partition claimed ahead, its start overlapping
        the tail of the one before, is not counted twice. ``unstarted``: partitions
        claimed ahead, begun but not fed yet (the one weighed, not work it drains)."""
        if not self.weights:
            return None
        now = time.monotonic()
        seconds = self.busy + (now - self.busy_since if self.busy_since is not None else 0.0)
        under_way = [
            (expected, done())
            for part, (expected, done) in self.meters.items()
            if part not in unstarted
        ]
        fetched = self.fetched + sum(done for _expected, done in under_way)
        if seconds <= 0 or fetched < MIN_MEASURED * self.typical():
            return None
        left = sum(max(expected - done, 0.0) for expected, done in under_way)
        return seconds / fetched, left

    def own_pace(self) -> float:
        """This worker's seconds a unit of work over its ended partitions (0: none yet)."""
        if not self.own:
            return 0.0
        work = sum(self.own_work) + (len(self.own) - len(self.own_work))
        return sum(self.own) / work if work > 0 else 0.0

    def _own_rate(self) -> float:
        """Seconds a unit of work: measured from its pages where known, else from its
        ended partitions (0: neither yet)."""
        measured = self.measured()
        return measured[0] if measured is not None else self.own_pace()
