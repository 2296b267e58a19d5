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
other worker holds a partition, so no partition is ever left without a worker. The
leave rule's reading of a claim's leases is ``core/leave.py``; a partition claimed ahead
is weighed again before it starts (``keep_ahead``) and given back when it should be left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

import structlog

from friendscrape.core.lease import LeaseConfig, jitter
from friendscrape.core.leave import judge_free, leaves
from friendscrape.core.pace import ClaimPace
from friendscrape.errors import StoreTransientError
from friendscrape.retry import retry_call
from friendscrape.stores import retried
from friendscrape.stores.base import Lease, LeaseHolder, PlanReads, RunStore, now_utc

log = structlog.get_logger(__name__)

_AHEAD_TRIES = 3  # takes a claim-ahead may lose before the worker claims after its drain


class ClaimStore(RunStore, PlanReads, Protocol):
    """What claiming reads and takes: pending partitions, leases, and the lease itself."""


@dataclass(frozen=True, slots=True)
class ClaimConfig:
    """The lease's settings, whether failed users count as pending, and the platform's
    page size that weighs partitions by their expected pages (None: by their users),
    with ``max_friends``, where a user's list stops (its pages capped there as the
    plan's are; None: no cap)."""

    lease: LeaseConfig
    retry_failed: bool
    page_size: int | None = None
    max_friends: int | None = None


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
    pace: ClaimPace | None,
) -> Lease | None:
    """The lease of the first of ``free`` (not empty, lowest first) that no other
    worker took since they were read, or None when others took them all. One take
    (``claim_lease``: on BigQuery one ``MERGE`` that picks the partition as it runs): a
    take of one partition named by a read lost the race whenever another worker took it
    between the two, and on a busy BigQuery, its statements seconds long, the losers of
    one race raced again, some losing several takes in a row while others claimed.
    ``began``: when the claim's read began (monotonic), for the seconds it took, logged
    and, where a lease was taken, timed into ``pace`` (``ClaimPace.took``)."""
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
    if pace is not None:
        pace.took(time.monotonic() - began)
    return lease


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
                    lambda: store.partition_pages(config.page_size, max_friends=config.max_friends),
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
        "claim_read",
        lambda: store.claim_read(
            retry_failed=config.retry_failed,
            page_size=config.page_size,
            max_friends=config.max_friends,
        ),
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
        if not free or leaves(pace, free, leases, run_id, draining=True):
            return None
        lease = await _take_one(
            store, run_id, config, free, leases, pending=len(pending), began=began, pace=pace
        )
        if lease is not None:
            log.info("claim.ahead", partition=lease.partition, draining=sorted(held))
            return lease
    return None


async def keep_ahead(
    store: ClaimStore,
    run_id: str,
    config: ClaimConfig,
    claimed: int,
    *,
    held: frozenset[int],
    pace: ClaimPace,
    draining: bool,
) -> bool:
    """The leave rule made again for partition ``claimed``, taken ahead and not started
    (nothing of it fetched): True to start it, False to give it back (its lease released
    untouched, so a faster worker claims it at once). Taken ahead while its partition
    before was still far from done (on a busy BigQuery a claim takes 5-13 s, so seconds
    ahead), a worker three times slower than the rest judged on paces read early, and
    took a partition it ended 20-35 s after them; later its own pace and the others' are
    read from far more work. ``held``: its other partitions; ``draining``: their last
    users are still to be fed (what is left of them comes first), else in flight
    (counted as ended). It keeps the partition whenever no other worker holds one, so
    none is left without a worker."""
    pending, leases = await _pending(store, config, pace)
    others = _free(pending, leases, run_id, held | {claimed})
    verdict = judge_free(
        pace,
        [claimed, *others],
        leases,
        run_id,
        draining=draining,
        unstarted=frozenset({claimed}),
    )
    log.info("claim.recheck", claimed=claimed, draining=draining, **verdict.fields())
    if verdict.leave:
        log.info("claim.given_back", partition=claimed, **verdict.fields())
    return not verdict.leave


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
        leaving = leaves(pace, free, leases, run_id, draining=False)
        if free and not leaving:
            lease = await _take_one(
                store, run_id, config, free, leases, pending=len(pending), began=began, pace=pace
            )
            if lease is not None:
                return lease
            continue  # another worker took one: read again at once, the list is stale
        if not waited and not leaving:
            log.info("claim.waiting", held=len(pending), reason="every pending partition is held")
            waited = True
        await _wait(stop, config.lease.heartbeat * jitter())
    return None
