"""Claiming partitions on demand (``run --partition next``): a worker takes the
lowest-numbered partition with pending users and no live lease, collects it, and claims
again, so a fleet balances itself and a dead worker's partition goes to the next claim.

A claim is the lease a numbered run takes, taken by one atomic take of the first free
partition still free (``claim_lease``): two workers racing for one partition end with
one holder, and the other takes the next free one in the same take.
A partition whose holder died is claimable once its lease lapses (at once when the
holder was a process of this host that no longer exists).

Near the end a worker much slower than the rest of the fleet (its upstream slower, say)
leaves the last free partitions to the others: taking one, it would end it well after
they had ended them all (``ClaimPace``, ``LEAVE_MARGIN``). Both ends weigh partitions by
their expected work (the plan's pages, ``partition_pages``): a worker's pace is its
seconds an expected page, so one whose partitions were small is not taken for faster
than it is, and a big last partition is weighed as big. It still takes them when no
other worker holds a partition, so no partition is ever left without a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from friendscrape.core.lease import LeaseConfig, jitter
from friendscrape.errors import StoreTransientError
from friendscrape.retry import retry_call
from friendscrape.stores import retried
from friendscrape.stores.base import Lease, LeaseHolder, PlanReads, RunStore, now_utc

log = structlog.get_logger(__name__)

_MIN_DONE = 2  # partitions the fleet ended before its pace is trusted
# Share of a typical partition's work this worker must have fetched before its pace is
# measured from its pages: the first pages of a partition come before its heavy users'.
_MIN_MEASURED = 0.2
_AHEAD_TRIES = 3  # takes a claim-ahead may lose before the worker claims after its drain
# A claim is a read and a take; a partition then counts and reads its pending users: a
# few statements more, about the claim's time again. Twice the claim's seconds is the
# lead a partition's feed gives its next claim (core/pipeline.py: Handover).
_LEAD_PER_CLAIM = 2.0
_FIRST_LEAD = 1.0  # seconds, before any claim was timed
_WAITING_FOR = 60.0  # seconds since last seen holding a partition a worker counts as waiting
LEAVE_MARGIN = 1.1
"""How much longer than the others' finish this worker's partition must take before it
leaves them the free ones: both are estimates from a few partitions, so a close case
(6.7 s against 6.3 s, say) claims. Taking one ends the job at the later of its own end
and the others' (one partition fewer for them), leaving it at the others' end: past
that end, each second of margin is a second of tail (a 1.5x margin let a worker three
times slower end its last partition some 9 s after the rest, 1.29x the ideal)."""


class ClaimStore(RunStore, PlanReads, Protocol):
    """What claiming reads and takes: pending partitions, leases, and the lease itself."""


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
        return found if found is not None else self._typical()

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

    def measured(self) -> tuple[float, float] | None:
        """(this worker's seconds a unit of work, the work left of its partitions under
        way), from the work its runs fetched over the seconds it held a partition (None:
        too little fetched yet, or no weights to compare). Counted over its held time,
        not summed over partitions, so a partition claimed ahead, its start overlapping
        the tail of the one before, is not counted twice."""
        if not self.weights:
            return None
        now = time.monotonic()
        seconds = self.busy + (now - self.busy_since if self.busy_since is not None else 0.0)
        under_way = [(expected, done()) for expected, done in self.meters.values()]
        fetched = self.fetched + sum(done for _expected, done in under_way)
        if seconds <= 0 or fetched < _MIN_MEASURED * self._typical():
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
        (None: not known yet): the fleet's work a second, less this worker's share, or
        what their partitions under way show (``held_seconds``) where that is faster.
        Between this worker's reads the fleet's pending work shrinks only as its saves
        land, and its first read comes before any worker fetched: early in a job it
        took the others for two or three times slower than they were, and a slow
        worker took a partition it ended long after them."""
        if others < 1:
            return None
        held = self.held_seconds
        if self.first is None or self.last is None:
            return held
        elapsed, done = self.last[0] - self.first[0], self.first[1] - self.last[1]
        if elapsed <= 0 or done < _MIN_DONE * self._typical():
            return held
        pace = self._own_rate()
        rate = done / elapsed - (1 / pace if pace > 0 else 0.0)
        fleet = others / rate if rate > 0 else None
        if fleet is None or held is None:
            return fleet if fleet is not None else held
        return min(fleet, held)

    def _typical(self) -> float:
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
            typical = theirs * self._typical()
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
        this worker should leave the ``free`` partitions to ``others`` live workers,
        which would end them all (``others_finish``) before this worker ended the first
        of them (its pace times that partition's work, over ``LEAVE_MARGIN`` times their
        finish); None: it claims. ``draining``: its latest partition is still under
        way; a partition claimed now would begin once it ends, so its own seconds count
        what is left of it first. Where its runs' pages are read (``measured``), its pace
        is their seconds a page and what is left is the partition's expected pages less
        those fetched: claiming ahead before its first partition ended, a worker three
        times slower knew its pace only as at least the seconds that partition had
        taken so far over its work, took one more and ended the job last. Otherwise its
        latest partition has taken at least the seconds since it began (its pace is
        then at least those seconds over that partition's work), what is left of it at
        its pace from now. (Not the claim's lead: with claims of seconds, a lead longer
        than a partition had every worker leave its claims ahead.)"""
        works = _works(free)
        finish = self.others_finish(works, others, ages, waiting, sizes) if works else None
        if finish is None:
            return None
        measured = self.measured()
        if measured is not None:
            # Its pace from the pages it fetched, the first partition's too: what is left
            # of its partitions under way comes first, then the one it would take.
            pace, left = measured
            pace = max(pace, self._in_their_frame(others + waiting))
            own = pace * ((left if draining else 0.0) + works[0])
            return (own, finish) if own > LEAVE_MARGIN * finish else None
        pace = self.own_pace()
        own = pace * works[0]
        if draining and self.since is not None:
            elapsed = time.monotonic() - self.since
            current = max(self.current, 1e-9)
            own = max(own, elapsed * works[0] / current) + max(pace * current - elapsed, 0.0)
        return (own, finish) if own > LEAVE_MARGIN * finish else None


def _works(free: int | Sequence[float]) -> list[float]:
    """The free partitions' work: ``free`` of work 1 each, or as given."""
    return [1.0] * free if isinstance(free, int) else list(free)


@dataclass(frozen=True, slots=True)
class ClaimConfig:
    """The lease's settings, whether failed users count as pending, and the platform's
    page size that weighs partitions by their expected pages (None: by their users)."""

    lease: LeaseConfig
    retry_failed: bool
    page_size: int | None = None


def _free(
    pending: list[int], leases: dict[int, LeaseHolder], run_id: str, held: frozenset[int]
) -> list[int]:
    """The pending partitions no other live run holds, lowest first (``held``: this
    worker's own partitions under way, never claimed again)."""
    now = now_utc()
    free = []
    for part in pending:
        if part in held:
            continue
        holder = leases.get(part)
        if holder is None or holder.run_id == run_id or holder.gone(now):
            free.append(part)
    return free


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


def _gone(leases: dict[int, LeaseHolder]) -> dict[int, str]:
    """The partitions whose holder is gone (lapsed, or a dead process of this host),
    with that holder's run: the take may overwrite their lease rows."""
    now = now_utc()
    return {part: holder.run_id for part, holder in leases.items() if holder.gone(now)}


async def _take_one(
    store: ClaimStore,
    run_id: str,
    config: ClaimConfig,
    free: list[int],
    leases: dict[int, LeaseHolder],
    *,
    pending: int,
    began: float,
) -> Lease | None:
    """The lease of the first of ``free`` (not empty, lowest first) that no other
    worker took since they were read, or None when others took them all. One take
    (``claim_lease``: on BigQuery one ``MERGE`` that picks the partition as it runs): a
    take of one partition named by a read lost the race whenever another worker took it
    between the two, and on a busy BigQuery, its statements seconds long, the losers of
    one race raced again, some losing several takes in a row while others claimed.
    ``began``: when the claim's read began (monotonic), for the seconds it took."""
    gone = _gone(leases)
    lease = await retry_call(
        lambda: store.claim_lease(run_id, config.lease.ttl, free, gone),
        on=StoreTransientError,
        policy=config.lease.retry,
        event="lease.retry",
    )
    if lease is None:
        log.info("claim.taken_by_another", partitions=len(free))
        return None
    log.info(
        "claim.taken",
        partition=lease.partition,
        pending_partitions=pending,
        seconds=round(time.monotonic() - began, 2),
    )
    return lease


def _holders(
    leases: dict[int, LeaseHolder], run_id: str, pace: ClaimPace
) -> tuple[dict[str, tuple[float | None, int]], int]:
    """Each other worker holding a live lease, with the seconds it has been at its
    latest partition (None where its lease does not say when it was taken) and that
    partition; and how many others wait for a partition: seen holding one within
    ``_WAITING_FOR`` seconds, holding none now, their lease not found gone (a worker
    killed or stopped is no longer waiting)."""
    now, clock = now_utc(), time.monotonic()
    latest: dict[str, tuple[float | None, int]] = {}
    for part, holder in leases.items():
        if holder.run_id == run_id:
            continue
        if holder.gone(now):
            pace.seen.pop(holder.run_id, None)
            pace.gone.add(holder.run_id)
            continue
        age = (now - holder.acquired_at).total_seconds() if holder.acquired_at else None
        before = latest.get(holder.run_id)
        if before is None or (age is not None and (before[0] is None or age < before[0])):
            latest[holder.run_id] = (age, part)
    for run in latest:
        if run not in pace.gone:
            pace.seen[run] = clock
    waiting = sum(
        1 for run, at in pace.seen.items() if run not in latest and clock - at <= _WAITING_FOR
    )
    return latest, waiting


def _others(
    leases: dict[int, LeaseHolder], run_id: str, pace: ClaimPace
) -> tuple[int, list[float], int]:
    """The other workers holding a live lease, the seconds each has been at its latest
    partition (empty unless every lease says when it was taken), and the others waiting
    for a partition (``_holders``)."""
    latest, waiting = _holders(leases, run_id, pace)
    ages = [age for age, _part in latest.values() if age is not None]
    return len(latest), ages if len(ages) == len(latest) else [], waiting


def _held_seconds(pace: ClaimPace, held: Iterable[tuple[float | None, int]]) -> float | None:
    """Holders' seconds a unit of work so far: the seconds they have held their
    partitions (``held``: each one's seconds and number) over the work done of them,
    where the claim's read gave what is left of them (None: too little done to tell)."""
    spent, done = 0.0, 0.0
    for age, part in held:
        if age is not None and part in pace.left:
            spent += age
            done += max(pace.work(part) - pace.left[part], 0.0)
    return spent / done if done >= _MIN_MEASURED * pace._typical() else None


def _leave(
    pace: ClaimPace | None,
    free: list[int],
    leases: dict[int, LeaseHolder],
    run_id: str,
    *,
    draining: bool,
) -> bool:
    """True when this worker leaves the ``free`` partitions to the others (logged once
    each time it starts to); ``draining``: its latest partition is still under way."""
    if pace is None:
        return False
    latest, waiting = _holders(leases, run_id, pace)
    pace.held_seconds = _held_seconds(pace, latest.values())
    now = now_utc()
    pace.own_held_seconds = _held_seconds(
        pace,
        (
            ((now - holder.acquired_at).total_seconds(), part)
            for part, holder in leases.items()
            if holder.run_id == run_id and holder.acquired_at is not None
        ),
    )
    # What is left of each holder's partition: the pages its claim read left of it where
    # read (from now: no age), else its plan's less the seconds it has been at it.
    known = [
        (0.0, pace.left[part]) if part in pace.left else (age, pace.work(part))
        for age, part in latest.values()
        if age is not None
    ]
    ages = [age for age, _work in known] if len(known) == len(latest) else []
    works = [pace.work_left(part) for part in free]
    verdict = pace.leave_to_others(
        works,
        len(latest),
        draining=draining,
        ages=ages,
        waiting=waiting,
        sizes=[work for _age, work in known] if ages else None,
    )
    if verdict is not None and not pace.leaving:
        own, finish = verdict
        log.info(
            "claim.left_to_others",
            free=len(free),
            workers=len(latest),
            waiting=waiting,
            work=round(works[0], 1),
            own_seconds=round(own, 1),
            others_finish_seconds=round(finish, 1),
        )
    pace.leaving = verdict is not None
    return pace.leaving


async def _pending(
    store: ClaimStore, config: ClaimConfig, pace: ClaimPace | None
) -> tuple[list[int], dict[int, LeaseHolder]]:
    if pace is not None and pace.weights is None:
        # Once a worker: the plan does not change under a fleet (a plan refuses to move
        # users under a live lease), so its partitions' work neither.
        pace.weights = {
            part: float(pages)
            for part, pages in (
                await retried(
                    config.lease.retry,
                    "partition_pages",
                    lambda: store.partition_pages(config.page_size),
                )
            ).items()
        }
    if pace is None:
        return await retried(
            config.lease.retry,
            "claim_view",
            lambda: store.claim_view(retry_failed=config.retry_failed),
        )
    read = await retried(
        config.lease.retry,
        "claim_view",
        lambda: store.claim_read(retry_failed=config.retry_failed, page_size=config.page_size),
    )
    pace.left = {part: float(pages) for part, pages in read.left.items()}
    pace.pending_users = dict(read.users)
    # The pages left of the partitions under way count too (they have lease rows, read
    # on both stores): counted by whole partitions, the fleet's pace saw only those
    # ended, early in a job far fewer than it had fetched, and took the others for
    # slower than they were.
    pace.observe(sum(pace.work_left(part) for part in read.pending))
    return read.pending, read.leases


async def claim_ahead(
    store: ClaimStore,
    run_id: str,
    config: ClaimConfig,
    held: frozenset[int],
    pace: ClaimPace | None = None,
) -> Lease | None:
    """The lease of the next free partition, taken while this worker's partitions
    ``held`` drain (their last users being fed or in flight); None at once when no
    other partition is free, or it leaves them to the others (``pace``): the worker
    then claims as ``claim_next`` once they are done."""
    for _ in range(_AHEAD_TRIES):
        began = time.monotonic()
        pending, leases = await _pending(store, config, pace)
        free = _free(pending, leases, run_id, held)
        if not free or _leave(pace, free, leases, run_id, draining=True):
            return None
        lease = await _take_one(
            store, run_id, config, free, leases, pending=len(pending), began=began
        )
        if lease is not None:
            if pace is not None:
                pace.took(time.monotonic() - began)
            log.info("claim.ahead", partition=lease.partition, draining=sorted(held))
            return lease
    return None


async def claim_next(
    store: ClaimStore,
    run_id: str,
    config: ClaimConfig,
    stop: asyncio.Event,
    pace: ClaimPace | None = None,
) -> Lease | None:
    """The lease of the next partition to collect, taken; None once no partition has
    pending users (or ``stop`` is set).

    While every pending partition is held by a live run, or this worker leaves the free
    ones to faster workers (``pace``), waits (about a heartbeat, jittered) and looks
    again: a holder that dies leaves its partition to this worker once its lease lapses,
    so the fleet never ends with a partition orphaned.
    """
    waited = False
    while not stop.is_set():
        began = time.monotonic()
        pending, leases = await _pending(store, config, pace)
        if not pending:
            log.info("claim.none_left")
            return None
        free = _free(pending, leases, run_id, frozenset())
        leaving = _leave(pace, free, leases, run_id, draining=False)
        if free and not leaving:
            lease = await _take_one(
                store, run_id, config, free, leases, pending=len(pending), began=began
            )
            if lease is not None:
                if pace is not None:
                    pace.took(time.monotonic() - began)
                return lease
            continue  # another worker took one: read again at once, the list is stale
        if not waited and not leaving:
            log.info("claim.waiting", held=len(pending), reason="every pending partition is held")
            waited = True
        await _wait(stop, config.lease.heartbeat * jitter())
    return None
