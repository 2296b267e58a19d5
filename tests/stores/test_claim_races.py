"""Claims racing other workers (issue 24): a worker's take is one atomic take of the
first of the free partitions it read that is still free (``claim_lease``), so a take
whose read went stale takes the next free one instead of losing the race. Before, a take
named one partition, and each take it lost cost a read and a take more (on a busy
BigQuery, where each lasts seconds, workers lost up to eight takes each at the start)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import timedelta

from friendscrape.core.claim import ClaimConfig, claim_ahead, claim_next
from friendscrape.core.lease import LeaseConfig
from friendscrape.retry import RetryPolicy
from friendscrape.stores.base import Lease, LeaseHolder, now_utc

CONFIG = ClaimConfig(
    lease=LeaseConfig(ttl=30.0, heartbeat=5.0, retry=RetryPolicy(1, 1.0, 0.01, 0.01)),
    retry_failed=False,
)


class RacingFleet:
    """Partitions 1-8, and a fleet that takes the first ``beaten`` partitions this
    worker's takes name just before each take runs (it got there first)."""

    def __init__(self, beaten: int) -> None:
        self.beaten = beaten
        self.holders: dict[int, LeaseHolder] = {}
        self.reads = 0
        self.takes: list[tuple[list[int], dict[int, str]]] = []

    async def pending_partitions(self, *, retry_failed: bool) -> list[int]:
        self.reads += 1
        return list(range(1, 9))

    async def leases(self) -> dict[int, LeaseHolder]:
        return dict(self.holders)

    async def claim_view(self, *, retry_failed: bool) -> tuple[list[int], dict[int, LeaseHolder]]:
        return await self.pending_partitions(retry_failed=retry_failed), await self.leases()

    async def claim_lease(
        self, run_id: str, ttl: float, candidates: Sequence[int], gone: Mapping[int, str]
    ) -> Lease | None:
        self.takes.append((list(candidates), dict(gone)))
        now = now_utc()
        later = now + timedelta(seconds=30)
        for part in candidates:
            if self.beaten:
                self.beaten -= 1
                self.holders[part] = LeaseHolder("other-host", 1, "other", later, now)
                continue
            holder = self.holders.get(part)
            if holder is None or holder.gone(now) or part in gone:
                self.holders[part] = LeaseHolder(socket.gethostname(), os.getpid(), run_id, later)
                return Lease(partition=part, run_id=run_id, ttl=ttl)
        return None


async def test_a_take_whose_read_went_stale_takes_the_next_free_partition() -> None:
    fleet = RacingFleet(beaten=2)
    lease = await claim_next(fleet, "me", CONFIG, asyncio.Event())  # type: ignore[arg-type]
    assert lease is not None
    # Others took 1 and 2 after this worker's read: its one take went on to 3.
    assert lease.partition == 3
    assert fleet.takes == [(list(range(1, 9)), {})]
    assert fleet.reads == 1


async def test_a_claim_ahead_never_names_its_own_partitions_and_gives_up_when_all_go() -> None:
    fleet = RacingFleet(beaten=100)
    held = frozenset({1})
    lease = await claim_ahead(fleet, "me", CONFIG, held)  # type: ignore[arg-type]
    # Everything free was taken by others at each take: it drains first, claims after.
    assert lease is None
    assert fleet.takes[0] == (list(range(2, 9)), {})
    assert len(fleet.takes) == 1
    assert fleet.reads == 2  # a second read found none free


async def test_a_take_names_the_holders_found_gone() -> None:
    """A lapsed holder's partition is free to take; the take names its run, so a store
    that cannot ask whether a holder lives (BigQuery) may overwrite that row at once."""
    fleet = RacingFleet(beaten=0)
    past = now_utc() - timedelta(seconds=5)
    fleet.holders[1] = LeaseHolder("elsewhere.example", 1, "run-dead", past, past)
    lease = await claim_next(fleet, "me", CONFIG, asyncio.Event())  # type: ignore[arg-type]
    assert lease is not None
    assert lease.partition == 1
    assert fleet.takes == [(list(range(1, 9)), {1: "run-dead"})]
