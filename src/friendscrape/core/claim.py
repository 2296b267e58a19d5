"""Claiming partitions on demand (``run --partition next``): a worker takes the
lowest-numbered partition with pending users and no live lease, collects it, and claims
again, so a fleet balances itself and a dead worker's partition goes to the next claim.

A claim is the lease a numbered run takes (``take_lease``): atomic on both stores, so
two workers racing for one partition end with one holder, and the other claims the next.
A partition whose holder died is claimable once its lease lapses (at once when the
holder was a process of this host that no longer exists).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

import structlog

from friendscrape.core.lease import LeaseConfig, jitter, take_lease
from friendscrape.errors import PartitionHeldError
from friendscrape.stores import retried
from friendscrape.stores.base import Lease, LeaseHolder, PlanReads, RunStore, now_utc

log = structlog.get_logger(__name__)


class ClaimStore(RunStore, PlanReads, Protocol):
    """What claiming reads and takes: pending partitions, leases, and the lease itself."""


@dataclass(frozen=True, slots=True)
class ClaimConfig:
    """The lease's settings, and whether failed users count as pending."""

    lease: LeaseConfig
    retry_failed: bool


def _free(pending: list[int], leases: dict[int, LeaseHolder], run_id: str) -> list[int]:
    """The pending partitions no other live run holds, lowest first."""
    now = now_utc()
    free = []
    for part in pending:
        holder = leases.get(part)
        if holder is None or holder.run_id == run_id or holder.gone(now):
            free.append(part)
    return free


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def claim_next(
    store: ClaimStore, run_id: str, config: ClaimConfig, stop: asyncio.Event
) -> Lease | None:
    """The lease of the next partition to collect, taken; None once no partition has
    pending users (or ``stop`` is set).

    While every pending partition is held by a live run, waits (about a heartbeat,
    jittered) and looks again: a holder that dies leaves its partition to this worker
    once its lease lapses, so the fleet never ends with a partition orphaned.
    """
    policy = config.lease.retry
    waited = False
    while not stop.is_set():
        pending = await retried(
            policy,
            "pending_partitions",
            lambda: store.pending_partitions(retry_failed=config.retry_failed),
        )
        if not pending:
            log.info("claim.none_left")
            return None
        leases = await retried(policy, "leases", store.leases)
        for part in _free(pending, leases, run_id):
            try:
                lease = await take_lease(store, part, run_id, config.lease)
            except PartitionHeldError:
                # Another worker claimed it between the read and the take: the next one.
                log.info("claim.taken_by_another", partition=part)
                continue
            log.info("claim.taken", partition=part, pending_partitions=len(pending))
            return lease
        if not waited:
            log.info("claim.waiting", held=len(pending), reason="every pending partition is held")
            waited = True
        await _wait(stop, config.lease.heartbeat * jitter())
    return None
