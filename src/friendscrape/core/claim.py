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


async def _take_first(
    store: ClaimStore, run_id: str, config: ClaimConfig, free: list[int], pending: int
) -> Lease | None:
    """The lease of the first of ``free`` no other worker takes first; None if all are."""
    for part in free:
        try:
            lease = await take_lease(store, part, run_id, config.lease)
        except PartitionHeldError:
            # Another worker claimed it between the read and the take: the next one.
            log.info("claim.taken_by_another", partition=part)
            continue
        log.info("claim.taken", partition=part, pending_partitions=pending)
        return lease
    return None


async def _pending(
    store: ClaimStore, config: ClaimConfig
) -> tuple[list[int], dict[int, LeaseHolder]]:
    policy = config.lease.retry
    pending = await retried(
        policy,
        "pending_partitions",
        lambda: store.pending_partitions(retry_failed=config.retry_failed),
    )
    leases = await retried(policy, "leases", store.leases) if pending else {}
    return pending, leases


async def claim_ahead(
    store: ClaimStore, run_id: str, config: ClaimConfig, held: frozenset[int]
) -> Lease | None:
    """The lease of the next free partition, taken while this worker's partitions
    ``held`` drain (their last users in flight); None at once when no other partition is
    free (the worker then claims as ``claim_next`` once they are done)."""
    pending, leases = await _pending(store, config)
    free = _free(pending, leases, run_id, held)
    lease = await _take_first(store, run_id, config, free, len(pending))
    if lease is not None:
        log.info("claim.ahead", partition=lease.partition, draining=sorted(held))
    return lease


async def claim_next(
    store: ClaimStore, run_id: str, config: ClaimConfig, stop: asyncio.Event
) -> Lease | None:
    """The lease of the next partition to collect, taken; None once no partition has
    pending users (or ``stop`` is set).

    While every pending partition is held by a live run, waits (about a heartbeat,
    jittered) and looks again: a holder that dies leaves its partition to this worker
    once its lease lapses, so the fleet never ends with a partition orphaned.
    """
    waited = False
    while not stop.is_set():
        pending, leases = await _pending(store, config)
        if not pending:
            log.info("claim.none_left")
            return None
        free = _free(pending, leases, run_id, frozenset())
        lease = await _take_first(store, run_id, config, free, len(pending))
        if lease is not None:
            return lease
        if not waited:
            log.info("claim.waiting", held=len(pending), reason="every pending partition is held")
            waited = True
        await _wait(stop, config.lease.heartbeat * jitter())
    return None
