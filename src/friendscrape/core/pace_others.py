"""How fast the rest of the fleet of ``run --partition next`` gets through work, and
when it would end the partitions left (``OthersPace``): from how the pending
partitions' work shrinks between this worker's reads, less its own share, or from what
the others' partitions under way show, whichever is faster."""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from friendscrape.core.pace_own import OwnPace

_MIN_DONE = 2  # partitions the fleet ended before its pace is trusted
# The fleet's pace is read over the latest span of a worker's reads at least this long
# (and with ``_MIN_DONE`` partitions' work done), not from its first read: on a busy
# BigQuery, claims of 10 s, the first read came before most workers had claimed at all
# (their first claims 0-23 s in), and the others read 3-8 times slower than they were
# (0.18-0.49 s a page to their own 0.06-0.11), so a slower worker claimed one more.
_MIN_SPAN = 8.0
_READS_KEPT = 64


@dataclass(slots=True)
class OthersPace(OwnPace):
    """The others' pace and finish, read against this worker's own (``OwnPace``)."""

    # Its claims' reads: (monotonic time, pending work), the latest last (the latest
    # ``_READS_KEPT``).
    reads: list[tuple[float, float]] = field(default_factory=list)
    # The seconds a unit of work the other holders' partitions under way took so far
    # (their seconds held over the work done of them, at the latest claim's read).
    held_seconds: float | None = None
    # This worker's own partitions under way seen the same way, from the same read: the
    # store shows every worker's work late alike (its claim and first read, then saves
    # every few seconds), so its pace and the others' compare in one frame.
    own_held_seconds: float | None = None

    def observe(self, pending: float) -> None:
        """The pending partitions' work a claim read just now."""
        self.reads.append((time.monotonic(), pending))
        del self.reads[:-_READS_KEPT]

    def _in_their_frame(self, others: int) -> float:
        """Its seconds a unit of work as the store shows them (its partitions under way,
        as the others' pace is read from theirs), scaled as the others' pace was where
        the fleet's gave it faster (0: not known). Early in a job the store shows every
        worker's work some seconds late, the others' pace reads slower than it is and
        its own, from its live counters, does not: a worker three times slower took a
        second partition it ended 6-10 s after the others."""
        held, own = self.held_seconds, self.own_held_seconds
        if held is None or own is None or held <= 0:
            return 0.0
        theirs = self.others_seconds(others)
        return own * (min(theirs, held) / held if theirs is not None else 1.0)

    def others_seconds(self, others: int) -> float | None:
        """The seconds one of the ``others`` workers takes a unit of work, on average
        (None: not known yet): the fleet's work a second, less this worker's share
        (``fleet_seconds``), or what their partitions under way show (``held_seconds``)
        where that is faster. Between this worker's reads the fleet's pending work
        shrinks only as its saves land, and its first read comes before any worker
        fetched: early in a job it took the others for two or three times slower than
        they were, and a slow worker took a partition it ended long after them."""
        if others < 1:
            return None
        fleet, held = self.fleet_seconds(others), self.held_seconds
        if fleet is None or held is None:
            return fleet if fleet is not None else held
        return min(fleet, held)

    def fleet_seconds(self, others: int) -> float | None:
        """The others' seconds a unit of work from how the fleet's pending work shrank
        over the latest span of this worker's reads (``_latest_span``), less its own
        share (None: too little done yet, or its own share all of it)."""
        span = self._latest_span()
        if others < 1 or span is None:
            return None
        elapsed, done = span
        pace = self._own_rate()
        rate = done / elapsed - (1 / pace if pace > 0 else 0.0)
        return others / rate if rate > 0 else None

    def _latest_span(self) -> tuple[float, float] | None:
        """(seconds, work done by the fleet) from the latest read back to the latest
        earlier one at least ``_MIN_SPAN`` seconds and ``_MIN_DONE`` partitions' work
        before it (or to the earliest read kept)."""
        reads = self.reads
        if len(reads) < 2:
            return None
        end, left = reads[-1]
        enough = _MIN_DONE * self.typical()
        for start, before in reversed(reads[:-1]):
            if end - start >= _MIN_SPAN and before - left >= enough:
                return end - start, before - left
        start, before = reads[0]
        if end - start > 0 and before - left >= enough:
            return end - start, before - left
        return None

    def others_finish(
        self,
        free: int | Sequence[float],
        others: int,
        ages: list[float] | None = None,
        waiting: int = 0,
        sizes: list[float] | None = None,
    ) -> float | None:
        """Seconds until ``others`` live workers would end the partitions they are at
        and the ``free`` ones (None: their pace is not known yet): each ends its own,
        then takes a free one whenever it ends one, the earliest first. ``free``: how
        many (each of work 1), or each one's work in claim order. ``ages``: the
        seconds each has been at its latest partition (from its lease), so what is left
        of it (``sizes``: those partitions' work, 1 each when not given); unknown, their
        ends are taken as spread evenly over one partition.
        ``waiting``: further workers holding none, waiting for one, free at once (the
        fleet's pace came from them too: left out, each holder's seconds a partition
        came out a fraction of its own, and a fast worker left the last partitions to
        a slow one while the others sat idle)."""
        # No other worker holding a partition: this one claims, whoever waits (a waiting
        # worker may itself be leaving the free ones), so none is left without a worker.
        theirs = self.others_seconds(others + waiting) if others >= 1 else None
        if theirs is None:
            return None
        works = free_works(free)
        if ages:
            held = sizes if sizes is not None and len(sizes) == len(ages) else [1.0] * len(ages)
            ends = [max(theirs * size - age, 0.0) for age, size in zip(ages, held, strict=True)]
        else:
            typical = theirs * self.typical()
            ends = [typical * (i + 0.5) / others for i in range(others)]
        ends += [0.0] * waiting
        heapq.heapify(ends)
        for work in works:
            heapq.heappush(ends, heapq.heappop(ends) + theirs * work)
        return max(ends)


def free_works(free: int | Sequence[float]) -> list[float]:
    """The free partitions' work: ``free`` of work 1 each, or as given."""
    return [1.0] * free if isinstance(free, int) else list(free)
