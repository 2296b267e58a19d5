"""The leave rule's margin: a worker leaves the free partitions to the others only when
its partition would take well over their finish, never in a close case."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from friendscrape.core import leave
from friendscrape.core.claim import ClaimConfig, _pending
from friendscrape.core.lease import LeaseConfig
from friendscrape.core.pace import LEAVE_MARGIN, ClaimPace
from friendscrape.retry import RetryPolicy
from friendscrape.stores.base import ClaimRead, LeaseHolder, now_utc


def _leave(
    pace: ClaimPace, free: int | Sequence[float], others: int, **options: Any
) -> tuple[float, float] | None:
    """(its own seconds, the others' finish) when ``pace.judge`` leaves the ``free``
    partitions to ``others`` workers; None: it claims."""
    verdict = pace.judge(free, others, **options)
    if not verdict.leave or verdict.own_seconds is None:
        return None
    return verdict.own_seconds, verdict.others_finish_seconds or 0.0


def _pace(own_seconds: float) -> ClaimPace:
    """Nine other workers ending 9 partitions in 9 s (one a second, each taking 9 s a
    partition); this worker's partitions took ``own_seconds`` each."""
    now = time.monotonic()
    return ClaimPace(reads=[(now - 9.0, 20), (now, 11)], own=[own_seconds] * 2)


def _verdict(factor: float) -> tuple[float, float] | None:
    """The leave rule's verdict, 9 free and 9 others, when this worker's partitions take
    ``factor`` times the others' finish (each ends the one it is at, spread over one
    partition, then one more: about 17 s; its own share barely moves their pace, so two
    passes settle it)."""
    own = 14.0
    for _ in range(3):
        finish = _pace(own).others_finish(9, 9)
        assert finish is not None
        own = factor * finish
    return _leave(_pace(own), 9, 9, draining=False)


def test_a_close_case_claims() -> None:
    """6.7 s against 6.3 s: the estimates cannot tell them apart; it claims."""
    assert _verdict(1.07) is None


def test_just_under_the_margin_claims() -> None:
    assert _verdict(LEAVE_MARGIN - 0.1) is None


def test_a_worker_well_over_the_margin_leaves() -> None:
    verdict = _verdict(LEAVE_MARGIN + 0.3)
    assert verdict is not None
    own, finish = verdict
    assert own > LEAVE_MARGIN * finish


def test_the_others_finish_counts_what_is_left_of_their_partitions() -> None:
    """Their leases say how long each other worker has been at its partition: nine
    about to end theirs end 9 free partitions about a partition from now; nine that
    have just begun theirs, about two."""
    pace = _pace(20.0)
    theirs = pace.others_seconds(9)
    assert theirs is not None
    ending = pace.others_finish(9, 9, ages=[theirs] * 9)
    begun = pace.others_finish(9, 9, ages=[0.0] * 9)
    assert ending == pytest.approx(theirs)
    assert begun == pytest.approx(2 * theirs)
    # One free partition: the earliest to end takes it; the others end theirs.
    assert pace.others_finish(1, 9, ages=[theirs, *[0.0] * 8]) == pytest.approx(theirs)
    # A worker taking about twice their partition's time claims while they have just
    # begun theirs (ending with them), and leaves the free ones when they are ending.
    slow = _pace(2 * theirs)
    assert _leave(slow, 9, 9, draining=False, ages=[0.0] * 9) is None
    assert _leave(slow, 9, 9, draining=False, ages=[theirs] * 9) is not None


def test_workers_waiting_for_a_partition_count_in_the_others_finish() -> None:
    """Near the end one other worker holds a partition and eight wait for one (they
    made the fleet's pace too). Counting only the holder, its partition seemed to take
    an eighth of its time, and a worker as fast as the rest left the last two free
    partitions to it while eight sat idle; counting the waiting ones, it claims, and a
    worker three times slower still leaves them."""
    fast = _pace(9.0)
    assert _leave(fast, 2, 1, draining=False, ages=[0.0]) is not None  # the old count
    assert _leave(fast, 2, 1, draining=False, ages=[0.0], waiting=8) is None
    slow = _pace(30.0)
    assert _leave(slow, 2, 1, draining=False, ages=[0.0], waiting=8) is not None
    # Nobody else holding a partition: it claims, however many are said to wait.
    assert _leave(slow, 2, 0, draining=False, ages=[], waiting=8) is None


def test_a_worker_seen_holding_a_partition_and_holding_none_now_is_waiting() -> None:
    """From the leases each claim reads: a worker seen holding a partition that holds
    none now waits for one; one whose lease was found gone (killed) does not."""
    now = now_utc()
    live = now + timedelta(seconds=30)
    lapsed = now - timedelta(seconds=1)
    pace = ClaimPace()
    leases = {
        1: LeaseHolder("a.example", 1, "run-a", live, now),
        2: LeaseHolder("b.example", 1, "run-b", live, now),
        3: LeaseHolder("c.example", 1, "run-c", live, now),
        4: LeaseHolder("me.example", 1, "me", live, now),
    }
    holders, waiting = leave.holders(leases, "me", pace)
    assert (sorted(holders), waiting) == (["run-a", "run-b", "run-c"], 0)
    # a ended its partition and waits; c's holder stopped renewing (killed).
    later = {2: leases[2], 3: LeaseHolder("c.example", 1, "run-c", lapsed, now)}
    holders, waiting = leave.holders(later, "me", pace)
    assert (sorted(holders), waiting) == (["run-b"], 1)
    assert holders["run-b"][1] == 2
    assert holders["run-b"][0] is not None
    # c's partition taken over by a: c is no longer counted, a holds one again.
    again = {2: leases[2], 3: LeaseHolder("a.example", 1, "run-a", live, now)}
    holders, waiting = leave.holders(again, "me", pace)
    assert (sorted(holders), waiting) == (["run-a", "run-b"], 0)


def test_a_draining_worker_counts_what_is_left_of_its_partition_before_the_next() -> None:
    """Claiming ahead, the partition it would take begins once the one it drains ends:
    a worker whose partitions take a little under the others' finish claims at their
    end, and leaves them the free one while what is left of its own comes first."""
    pace = _pace(9.0)
    finish = pace.others_finish(1, 9, ages=[0.0] * 9)
    assert finish is not None
    own = 0.9 * LEAVE_MARGIN * finish
    pace = _pace(own)
    finish = pace.others_finish(1, 9, ages=[0.0] * 9)
    assert finish is not None
    pace.since = time.monotonic() - own  # its partition ending about now
    assert _leave(pace, 1, 9, draining=True, ages=[0.0] * 9) is None
    pace.since = time.monotonic() - own / 2  # half of it still to come
    verdict = _leave(pace, 1, 9, draining=True, ages=[0.0] * 9)
    assert verdict is not None
    assert verdict[0] == pytest.approx(1.5 * own, rel=0.05)


def test_a_slow_worker_whose_partitions_were_small_leaves_a_big_one_to_a_faster_one() -> None:
    """Partitions weighed by their expected pages (the plan's): nine others at 0.1 s a
    page (80-page partitions, 8 s each), this worker at 0.3 s a page whose two partitions
    had 25 pages (7.5 s each). Near the end one other is ending its partition, eight
    wait, and the last free partition has 150 pages: this worker would take 45 s, a
    waiting one 15 s, so it leaves it. Weighed a partition each (seconds a partition, as
    before), its 7.5 s looked faster than their 8 s and it claimed, ending the job 30 s
    after the others."""
    now, clock = now_utc(), time.monotonic()
    live = now + timedelta(seconds=30)
    leases = {7: LeaseHolder("h.example", 1, "run-h", live, now - timedelta(seconds=8))}
    waiting = {f"run-{i}": clock for i in range(8)}
    weights = dict.fromkeys(range(1, 101), 80.0) | {3: 25.0, 5: 25.0, 100: 150.0}
    # 9 s of the fleet: 90 pages a second from the others, 3.3 from this worker.
    by_pages = ClaimPace(reads=[(clock - 9.0, 5000.0), (clock, 5000.0 - 9 * 93.33)])
    by_pages.weights = weights
    for part in (3, 5):
        by_pages.finished(7.5, part)
    by_pages.seen = dict(waiting)
    assert leave.leaves(by_pages, [100], leases, "me", draining=False)
    verdict = _leave(by_pages, [150.0], 1, draining=False, ages=[8.0], waiting=8)
    assert verdict is not None
    assert verdict == (pytest.approx(45.0, rel=0.01), pytest.approx(15.0, rel=0.05))
    # The same fleet counted in partitions (11 ended in those 9 s): it claims.
    by_partitions = ClaimPace(reads=[(clock - 9.0, 20), (clock, 9)], own=[7.5, 7.5])
    by_partitions.seen = dict(waiting)
    assert not leave.leaves(by_partitions, [100], leases, "me", draining=False)
    # A partition as small as its own (25 pages, 7.5 s against a waiting worker's 2.5 s)
    # it leaves as well; while the nine have just begun 80-page partitions (8 s), it
    # claims one of 25 pages.
    assert _leave(by_pages, [25.0], 1, draining=False, ages=[8.0], waiting=8)
    fresh = {"ages": [0.0] * 9, "sizes": [80.0] * 9}
    assert _leave(by_pages, [25.0], 9, draining=False, **fresh) is None


def _half_done(seconds_a_page: float) -> ClaimPace:
    """Nine others at 0.1 s an expected page (90 a second between them); this worker
    half through its first partition of 100 expected pages, none ended yet, at
    ``seconds_a_page``: 50 fetched over the seconds that took."""
    clock = time.monotonic()
    fleet = 9 * 9 * 10.0 + 9 / seconds_a_page
    pace = ClaimPace(reads=[(clock - 9.0, 5000.0), (clock, 5000.0 - fleet)])
    pace.weights = dict.fromkeys(range(1, 31), 100.0)
    pace.begun(1, done=lambda: 50.0)
    pace.since = pace.busy_since = clock - 50 * seconds_a_page
    return pace


def test_a_worker_half_through_its_first_partition_knows_its_pace_from_its_pages() -> None:
    """Claiming ahead before any of its partitions ended: a worker three times slower,
    half through its first partition (15 s for 50 of 100 pages), would end what is left
    of it and a free partition of 100 pages in 45 s; the nine others, just begun on
    theirs (10 s each), end theirs and that one in 20 s. It leaves it to them. Known
    only from the seconds its partition had taken (at least 15 s over 100 pages, as
    before), it took it and ended the job last."""
    slow = _half_done(0.3)
    fresh = {"ages": [0.0] * 9, "sizes": [100.0] * 9}
    verdict = _leave(slow, [100.0], 9, draining=True, **fresh)
    assert verdict is not None
    assert verdict == (pytest.approx(45.0, rel=0.02), pytest.approx(20.0, rel=0.05))
    slow.meters.clear()  # its pages unread: the seconds so far alone
    assert _leave(slow, [100.0], 9, draining=True, **fresh) is None
    # As fast as the others (5 s for its 50 pages): it claims.
    assert _leave(_half_done(0.1), [100.0], 9, draining=True, **fresh) is None


def test_a_worker_pace_counts_the_seconds_it_held_a_partition_once() -> None:
    """Its pace is the work its runs fetched over the seconds it held at least one
    partition: a partition claimed ahead overlaps the one before, counted once, and
    the seconds it held none (waiting for a claim) are not counted."""
    pace = ClaimPace(weights=dict.fromkeys(range(1, 4), 100.0))
    assert pace.measured() is None
    fetched = {1: 0.0, 2: 0.0}
    pace.begun(1, done=lambda: fetched[1])
    pace.begun(2, done=lambda: fetched[2])  # claimed ahead
    assert pace.busy_since is not None
    pace.busy_since -= 30.0  # 30 s holding partitions
    fetched[1], fetched[2] = 100.0, 20.0
    pace.finished(25.0, 1)
    measured = pace.measured()
    assert measured is not None
    assert measured[0] == pytest.approx(30.0 / 120.0, rel=0.01)
    assert measured[1] == pytest.approx(80.0)
    fetched[2] = 100.0
    pace.finished(20.0, 2)
    assert pace.busy == pytest.approx(30.0, abs=0.5)
    assert pace.busy_since is None
    measured = pace.measured()
    assert measured is not None
    assert measured == (pytest.approx(30.0 / 200.0, rel=0.02), 0.0)


def test_a_partition_taken_over_weighs_the_pages_left_of_it() -> None:
    """A free partition whose holder died halfway weighs the pages its claim read left
    of it, not its plan's: a worker twice as slow as the nine others (5 s into their
    10 s partitions) leaves them a whole 100-page partition (20 s against their 15 s)
    but takes one with 10 pages left (2 s against 6 s)."""
    now, clock = now_utc(), time.monotonic()
    live = now + timedelta(seconds=30)
    leases = {
        part: LeaseHolder("h.example", 1, f"run-{part}", live, now - timedelta(seconds=5))
        for part in range(3, 12)
    }
    pace = ClaimPace(reads=[(clock - 9.0, 5000.0), (clock, 5000.0 - 810.0 - 45.0)])
    pace.weights = dict.fromkeys(range(1, 31), 100.0)
    pace.finished(20.0, 1)
    assert pace.own_pace() == pytest.approx(0.2)
    assert leave.leaves(pace, [2], leases, "me", draining=False)
    pace.left = {2: 10.0}
    assert pace.work_left(2) == 10.0
    assert not leave.leaves(pace, [2], leases, "me", draining=False)
    # Claimed, it is its partition's work: its pace then counts 10 pages, not 100.
    pace.begun(2)
    pace.finished(2.0, 2)
    assert pace.own_work[-1] == 10.0


class _Plan:
    """A plan of three 100-page partitions, 1 and 2 under way with ``left`` pages left."""

    def __init__(self) -> None:
        self.left: dict[int, int] = {1: 100, 2: 100}

    async def partition_pages(
        self, page_size: int | None, *, max_friends: int | None = None
    ) -> dict[int, int]:
        return {1: 100, 2: 100, 3: 100}

    async def claim_read(
        self, *, retry_failed: bool, page_size: int | None, max_friends: int | None = None
    ) -> ClaimRead:
        return ClaimRead([1, 2, 3], {}, dict(self.left))


async def test_the_fleet_pace_counts_the_pages_fetched_of_partitions_under_way() -> None:
    """Each claim's read gives the pages left of the partitions under way: the fleet's
    progress counts them as they shrink, not only once a partition has ended (early in
    a job few have, and the others looked slower than they were)."""
    plan, pace = _Plan(), ClaimPace()
    lease = LeaseConfig(ttl=30.0, heartbeat=5.0, retry=RetryPolicy(1, 1.0, 0.01, 0.01))
    config = ClaimConfig(lease=lease, retry_failed=False, page_size=100)
    await _pending(plan, config, pace)  # type: ignore[arg-type]
    plan.left = {1: 40, 2: 70}
    await _pending(plan, config, pace)  # type: ignore[arg-type]
    assert len(pace.reads) == 2
    assert (pace.reads[0][1], pace.reads[-1][1]) == (300.0, 210.0)
    assert pace.work_left(2) == 70.0
    assert pace.work_left(3) == 100.0


def test_the_others_pace_is_read_from_their_partitions_under_way_early_in_a_job() -> None:
    """Ten seconds into a job, the fleet's pending users have shrunk by 100 since this
    worker's first read (the fleet's first claims and saves lag): the nine others look
    like a user a second each. Their partitions under way tell better: each 4 s into
    its 20 users with 10 left, 0.4 s a user. This worker, a user a second, half through
    its first partition, would end the rest of it and a free one in 32 s; the others
    end theirs and the 11 free ones in 20 s. It leaves them; from the fleet's shrinking
    alone (49 s) it claimed."""
    now, clock = now_utc(), time.monotonic()
    live = now + timedelta(seconds=30)
    leases = {
        part: LeaseHolder("h.example", 1, f"run-{part}", live, now - timedelta(seconds=4))
        for part in range(2, 11)
    }
    free = list(range(11, 22))
    pace = ClaimPace(reads=[(clock - 10.0, 600.0), (clock, 500.0)])
    pace.weights = dict.fromkeys(range(1, 31), 20.0)
    pace.begun(1, done=lambda: 10.0)
    pace.since = pace.busy_since = clock - 10.6
    assert not leave.leaves(pace, free, leases, "me", draining=True)
    assert pace.held_seconds is None
    pace.left = dict.fromkeys(range(2, 11), 10.0)
    assert leave.leaves(pace, free, leases, "me", draining=True)
    assert pace.held_seconds == pytest.approx(0.4, rel=0.01)
    assert pace.others_seconds(9) == pytest.approx(0.4, rel=0.01)


def test_its_pace_is_read_as_the_others_are_where_the_store_shows_them_late() -> None:
    """Early in a job the store shows every worker's work late (claims, first reads,
    saves every few seconds): the nine others' partitions under way read 0.7 s a user
    (7 s for 10 of 20 users), this worker's own 1.6 s a user (16 s for 10), though its
    live counters give 1.0. Against their finish of 35 s so read, its 30 s (1.0 s a
    user) claimed; read as theirs are (48 s), it leaves them the free ones."""
    now, clock = now_utc(), time.monotonic()
    live = now + timedelta(seconds=30)
    leases = {
        part: LeaseHolder("h.example", 1, f"run-{part}", live, now - timedelta(seconds=7))
        for part in range(2, 11)
    }
    mine = LeaseHolder("me.example", 1, "me", live, now - timedelta(seconds=16))
    free = list(range(11, 22))
    pace = ClaimPace(reads=[(clock - 10.0, 600.0), (clock, 520.0)])
    pace.weights = dict.fromkeys(range(1, 31), 20.0)
    pace.begun(1, done=lambda: 10.0)
    pace.since = pace.busy_since = clock - 10.0
    pace.left = dict.fromkeys(range(1, 11), 10.0)  # the latest claim's read
    assert not leave.leaves(pace, free, leases, "me", draining=True)  # its own lease unread
    assert pace.own_held_seconds is None
    assert leave.leaves(pace, free, leases | {1: mine}, "me", draining=True)
    assert pace.held_seconds == pytest.approx(0.7, rel=0.01)
    assert pace.own_held_seconds == pytest.approx(1.6, rel=0.01)


def test_the_fleet_pace_is_read_over_the_latest_span_of_reads_not_from_the_first() -> None:
    """A worker's first read came before the fleet fetched anything (on a busy BigQuery
    most workers' first claims came 10-20 s after it): over the latest span of reads at
    least 8 s long, the others' pace is what they do now."""
    clock = time.monotonic()
    pace = ClaimPace(
        reads=[(clock - 30.0, 5000.0), (clock - 20.0, 5000.0), (clock - 10.0, 4000.0)],
    )
    pace.reads.append((clock, 3000.0))
    # 1,000 units in the latest 10 s: nine others at 0.09 s a unit (not 2,000 in 30 s:
    # 0.135 s a unit, half again as slow).
    assert pace.fleet_seconds(9) == pytest.approx(9 / 100.0, rel=0.01)
    assert pace.others_seconds(9) == pytest.approx(0.09, rel=0.01)
    # A span shorter than 8 s is not read alone: back to the read before it.
    pace.reads.append((clock + 2.0, 2900.0))
    assert pace.fleet_seconds(9) == pytest.approx(9 / (1100.0 / 12.0), rel=0.01)


def test_every_verdict_says_its_figures_and_which_estimate_was_unknown() -> None:
    """A worker's first claim ahead, its pace and the others' not known yet: it claims,
    and the verdict says why (``unknown``), not a silent default."""
    verdict = ClaimPace(weights={1: 100.0, 2: 100.0}).judge(
        [120.0, 80.0], 9, draining=True, waiting=1
    )
    assert not verdict.leave
    fields = verdict.fields()
    assert fields["others_finish_seconds"] == "unknown"
    assert fields["others_pace"] == "unknown"
    assert fields["own_pace"] == "unknown"
    assert (fields["free"], fields["free_work"], fields["work"]) == (2, 200.0, 120.0)
    assert (fields["workers"], fields["waiting"]) == (9, 1)
    clock = time.monotonic()
    slow = ClaimPace(reads=[(clock - 9.0, 20), (clock, 11)], own=[30.0, 30.0])
    verdict = slow.judge(9, 9, draining=False, ages=[0.0] * 9)
    assert verdict.leave
    assert verdict.others_pace == pytest.approx(9 / (9 / 9.0 - 1 / 30.0), rel=0.01)
    assert verdict.own_seconds == pytest.approx(30.0)
    assert _leave(slow, 9, 9, draining=False, ages=[0.0] * 9) == (
        verdict.own_seconds,
        verdict.others_finish_seconds,
    )


def test_a_partition_given_back_counts_neither_in_its_pace_nor_in_what_is_left() -> None:
    """A partition claimed ahead and given back before it started: its expected work is
    no longer what is left of this worker's partitions, and its seconds not its pace."""
    pace = ClaimPace(weights={1: 100.0, 2: 100.0})
    fetched = {1: 0.0}
    pace.begun(1, lambda: fetched[1])
    pace.begun(2, lambda: 0.0)
    fetched[1] = 100.0
    measured = pace.measured()
    assert measured is not None
    assert measured[1] == pytest.approx(100.0)  # partition 2's, not begun
    pace.finished(5.0, 1)
    pace.dropped(2)
    assert pace.meters == {}
    assert pace.expected == {}
    assert pace.busy_since is None
    assert pace.fetched == 100.0
    assert pace.own_work == [100.0]  # partition 2 counted nowhere


def test_a_partition_claimed_ahead_and_not_started_is_not_work_it_drains() -> None:
    """Re-made while the partition before is still fed, the verdict counts what is left
    of that one first, then the partition claimed ahead once (begun, not started)."""
    pace = ClaimPace(weights={1: 100.0, 2: 100.0})
    pace.begun(1, lambda: 60.0)
    pace.begun(2, lambda: 0.0)
    both = pace.measured()
    alone = pace.measured(frozenset({2}))
    assert both is not None
    assert alone is not None
    assert (both[1], alone[1]) == (140.0, 40.0)
    verdict = pace.judge([100.0], 9, draining=True, unstarted=frozenset({2}))
    assert verdict.own_left == 40.0
    assert verdict.own_seconds is not None
    assert verdict.own_pace is not None
    assert verdict.own_seconds / verdict.own_pace == pytest.approx(140.0)  # 40 + 100


def test_only_a_worker_that_may_be_slower_than_the_others_looks_again() -> None:
    """A worker no slower than the others never leaves them a partition: it does not
    read the store again before its partition claimed ahead starts."""
    clock = time.monotonic()
    # The fleet ended 1,900 pages in 9 s (211 a second).
    pace = ClaimPace(weights={1: 100.0}, reads=[(clock - 9.0, 5000.0), (clock, 3100.0)])
    pace.begun(1, lambda: 100.0)
    pace.busy_since = clock - 10.0  # 100 pages in 10 s: 0.1 s a page
    verdict = pace.judge([100.0], 9, draining=True)
    assert verdict.others_pace == pytest.approx(9 / (1900 / 9 - 10), rel=0.01)  # 0.045
    assert verdict.slower()
    pace.busy_since = clock - 2.0  # 100 pages in 2 s: 0.02 s a page
    verdict = pace.judge([100.0], 9, draining=True)
    assert verdict.others_pace == pytest.approx(9 / (1900 / 9 - 50), rel=0.01)  # 0.056
    assert not verdict.slower()
    assert ClaimPace(weights={1: 100.0}).judge([100.0], 9, draining=True).slower()  # unknown
