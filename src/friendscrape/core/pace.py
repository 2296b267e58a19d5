"""How fast a worker of ``run --partition next`` and the rest of its fleet get through
work, and whether the worker should leave the last free partitions to the others
(``ClaimPace``): the leave rule of ``core/claim.py``, kept apart from the claims' store
calls so it reads, and is tested, as the arithmetic it is."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from friendscrape.core.verdict import Verdict

_MIN_DONE = 2  # partitions the fleet ended before its pace is trusted
# The fleet's pace is read over the latest span of a worker's reads at least this long
# (and with ``_MIN_DONE`` partitions' work done), not from its first read: on a busy
# BigQuery, claims of 10 s, the first read came before most workers had claimed at all
# (their first claims 0-23 s in), and the others read 3-8 times slower than they were
# (0.18-0.49 s a page to their own 0.06-0.11), so a slower worker claimed one more.
_MIN_SPAN = 8.0
_READS_KEPT = 64
# Share of a typical partition's work this worker must have fetched before its pace is
# measured from its pages: the first pages of a partition come before its heavy users'.
MIN_MEASURED = 0.2
# A claim is a read and a take; a partition then counts and reads its pending users: a
# few statements more, about the claim's time again. Twice the claim's seconds is the
# lead a partition's feed gives its next claim (core/pipeline.py: Handover).
_LEAD_PER_CLAIM = 2.0
_FIRST_LEAD = 1.0  # seconds, before any claim was timed
LEAVE_MARGIN = 1.1
"""How much longer than the others' finish this worker's partition must take before it
leaves them the free ones: both are estimates from a few partitions, so a close case
(6.7 s against 6.3 s, say) claims. Taking one ends the job at the later of its own end
and the others' (one partition fewer for them), leaving it at the others' end: past
that end, each second of margin is a second of tail (a 1.5x margin let a worker three
times slower end its last partition some 9 s after the rest, 1.29x the ideal)."""


@dataclass(slots=True)
class ClaimPace:
    """How fast this worker and the rest of the fleet get through work, from what its
    claims read: the fleet's pace from how the pending partitions' work shrinks, its own
    from the seconds each of its partitions took over their work. A partition's work is
    its expected pages (``weights``, the plan's ``partition_pages``); with no weights,
    each partition weighs 1 and paces are seconds a partition. Even a plan balanced by
    pages has partitions of unequal work (a user heavier than a share makes one alone),
    so seconds a partition did not compare: a slow worker whose partitions had been
    small looked about as fast as the others, took a big last partition and ended the
    job late."""

    first: tuple[float, float] | None = None  # (monotonic time, pending work)
    last: tuple[float, float] | None = None
    reads: list[tuple[float, float]] = field(default_factory=list)  # each, latest last
    own: list[float] = field(default_factory=list)  # seconds of each of its partitions
    own_work: list[float] = field(default_factory=list)  # their work (missing: 1 each)
    weights: dict[int, float] | None = None  # expected pages a partition (None: not read)
    # Expected pages left of the partitions the latest claim read could weigh (partly
    # collected ones: a dead holder's, say), at the latest claim's read.
    left: dict[int, float] = field(default_factory=dict)
    expected: dict[int, float] = field(default_factory=dict)  # of its partitions under way
    # Pending users of the partitions the latest claim's read counted (a run starting
    # one of them need not count them again: a statement less a partition on BigQuery).
    pending_users: dict[int, int] = field(default_factory=dict)
    # The seconds a unit of work the other holders' partitions under way took so far
    # (their seconds held over the work done of them, at the latest claim's read).
    held_seconds: float | None = None
    # This worker's own partitions under way seen the same way, from the same read: the
    # store shows every worker's work late alike (its claim and first read, then saves
    # every few seconds), so its pace and the others' compare in one frame.
    own_held_seconds: float | None = None
    since: float | None = None  # monotonic time its latest partition started
    current: float = 1.0  # the work of its latest partition
    leaving: bool = False  # leaving the free partitions to the others now
    # Its partitions under way: each one's expected work and a reader of the work its
    # run fetched so far (``begun``'s ``done``), so its pace is known from its pages
    # before any of its partitions ended; the work its ended ones fetched; the seconds
    # it held at least one partition (ended spans, and when the current one began).
    meters: dict[int, tuple[float, Callable[[], float]]] = field(default_factory=dict)
    fetched: float = 0.0
    busy: float = 0.0
    busy_since: float | None = None
    claim_seconds: float | None = None  # the latest claims' seconds (read and take), smoothed
    # Other workers' runs, when each was last seen holding a live lease (monotonic), and
    # those whose lease was found gone: the workers waiting for a partition are seen
    # ones that hold none now.
    seen: dict[str, float] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    verdict: Verdict | None = None  # the latest claim's (or re-check's) verdict

    def took(self, seconds: float) -> None:
        """A claim (its read and its take) took ``seconds``."""
        last = self.claim_seconds
        self.claim_seconds = seconds if last is None else (last + seconds) / 2

    def lead_seconds(self) -> float:
        """The seconds before a partition's last users are fed that its next claim
        starts, so the next partition feeds as they are (``Handover``)."""
        if self.claim_seconds is None:
            return _FIRST_LEAD
        return _LEAD_PER_CLAIM * self.claim_seconds

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

    def observe(self, pending: float) -> None:
        """The pending partitions' work a claim read just now."""
        now = time.monotonic()
        if self.first is None:
            self.first = (now, pending)
        self.last = (now, pending)
        self.reads.append(self.last)
        del self.reads[:-_READS_KEPT]

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
            if not self.meters and self.busy_since is not None:
                self.busy += time.monotonic() - self.busy_since
                self.busy_since = None

    def dropped(self, partition: int) -> None:
        """``partition``, begun, was given back before any of it was fetched: neither
        its seconds nor its work count."""
        self.expected.pop(partition, None)
        meter = self.meters.pop(partition, None)
        if meter is not None and not self.meters and self.busy_since is not None:
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

    def _own_rate(self) -> float:
        """Seconds a unit of work: measured from its pages where known, else from its
        ended partitions (0: neither yet)."""
        measured = self.measured()
        return measured[0] if measured is not None else self.own_pace()

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

    def own_pace(self) -> float:
        """This worker's seconds a unit of work over its ended partitions (0: none yet)."""
        if not self.own:
            return 0.0
        work = sum(self.own_work) + (len(self.own) - len(self.own_work))
        return sum(self.own) / work if work > 0 else 0.0

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
        between this worker's first read and its latest, less its own share (None: too
        little done yet, or its own share all of it)."""
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
        before it (or to the first read, where only it and the latest are known)."""
        reads = self.reads
        if len(reads) < 2:
            reads = [r for r in (self.first, self.last) if r is not None]
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

    def typical(self) -> float:
        """A partition's mean work (1 with no weights)."""
        if not self.weights:
            return 1.0
        return sum(self.weights.values()) / len(self.weights)

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
        works = _works(free)
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

    def leave_to_others(
        self,
        free: int | Sequence[float],
        others: int,
        *,
        draining: bool,
        ages: list[float] | None = None,
        waiting: int = 0,
        sizes: list[float] | None = None,
    ) -> tuple[float, float] | None:
        """(its own seconds to end the partition it would take, the others' finish) when
        this worker should leave the ``free`` partitions to the others; None: it claims
        (``judge``)."""
        verdict = self.judge(
            free, others, draining=draining, ages=ages, waiting=waiting, sizes=sizes
        )
        if not verdict.leave or verdict.own_seconds is None:
            return None
        return verdict.own_seconds, verdict.others_finish_seconds or 0.0

    def judge(
        self,
        free: int | Sequence[float],
        others: int,
        *,
        draining: bool,
        ages: list[float] | None = None,
        waiting: int = 0,
        sizes: list[float] | None = None,
        unstarted: frozenset[int] = frozenset(),
    ) -> Verdict:
        """Whether this worker leaves the ``free`` partitions to ``others`` live
        workers, with the figures it weighed: it leaves when they would end them all
        (``others_finish``) before this worker ended the first of them (its pace times
        that partition's work, over ``LEAVE_MARGIN`` times their finish). ``draining``:
        its latest partition is still under way; a partition claimed now would begin
        once it ends, so its own seconds count what is left of it first. Where its runs'
        pages are read (``measured``), its pace is their seconds a page (or, slower, as
        the store shows its partitions: ``_in_their_frame``) and what is left is the
        partition's expected pages less those fetched. Otherwise its latest partition
        has taken at least the seconds since it began (its pace is then at least those
        seconds over that partition's work), what is left of it at its pace from now.
        (Not the claim's lead: with claims of seconds, a lead longer than a partition
        had every worker leave its claims ahead.) ``unstarted``: see ``measured``."""
        works = _works(free)
        finish = self.others_finish(works, others, ages, waiting, sizes) if works else None
        measured = self.measured(unstarted)
        frame = self._in_their_frame(others + waiting)
        figures = Verdict(
            leave=False,
            own_seconds=None,
            others_finish_seconds=finish,
            own_pace=measured[0] if measured is not None else None,
            own_pace_theirs=frame or None,
            others_pace=self.others_seconds(others + waiting),
            others_fleet_pace=self.fleet_seconds(others + waiting),
            others_held_pace=self.held_seconds,
            own_left=measured[1] if measured is not None and draining else 0.0,
            workers=others,
            waiting=waiting,
            free=len(works),
            free_work=sum(works),
            first_work=works[0] if works else 0.0,
        )
        if not works:
            return figures
        if measured is not None:
            # Its pace from the pages it fetched, the first partition's too: what is left
            # of its partitions under way comes first, then the one it would take.
            own = max(measured[0], frame) * (figures.own_left + works[0])
        else:
            pace = self.own_pace()
            own = pace * works[0]
            if draining and self.since is not None:
                elapsed = time.monotonic() - self.since
                current = max(self.current, 1e-9)
                own = max(own, elapsed * works[0] / current) + max(pace * current - elapsed, 0.0)
        leave = finish is not None and own > LEAVE_MARGIN * finish
        return replace(figures, leave=leave, own_seconds=own)


def _works(free: int | Sequence[float]) -> list[float]:
    """The free partitions' work: ``free`` of work 1 each, or as given."""
    return [1.0] * free if isinstance(free, int) else list(free)
