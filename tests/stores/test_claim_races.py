"""Claims lost to other workers (issue 24): a worker reads the partitions again after
each take it loses, and tries one further along each time (and up to 16 more, so the
losers of one race do not race again for one partition), instead of going down a list
read before its take (on a busy BigQuery, where a take lasts seconds, such a worker lost
every race for twenty partitions while the fleet claimed them)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from friendscrape.core.claim import ClaimConfig, _spread, claim_ahead, claim_next
from friendscrape.core.lease import LeaseConfig
from friendscrape.retry import RetryPolicy
from friendscrape.stores.base import Lease, LeaseHolder, now_utc

CONFIG = ClaimConfig(
    lease=LeaseConfig(ttl=30.0, heartbeat=5.0, retry=RetryPolicy(1, 1.0, 0.01, 0.01)),
    retry_failed=False,
)


class RacingFleet:
    """Partitions 1-8, and a fleet that takes each partition this worker tries while
    ``beaten`` (it got there first), as on a store whose takes are slow."""

    def __init__(self, beaten: int) -> None:
        self.beaten = beaten
        self.holders: dict[int, LeaseHolder] = {}
        self.reads = 0
        self.tried: list[int] = []

    async def pending_partitions(self, *, retry_failed: bool) -> list[int]:
        self.reads += 1
        return list(range(1, 9))

    async def leases(self) -> dict[int, LeaseHolder]:
        return dict(self.holders)

    async def claim_view(self, *, retry_failed: bool) -> tuple[list[int], dict[int, LeaseHolder]]:
        return await self.pending_partitions(retry_failed=retry_failed), await self.leases()

    async def acquire_lease(self, lease: Lease) -> None:
        self.tried.append(lease.partition)
        now = now_utc()
        if len(self.tried) <= self.beaten:
            # Another worker of another host took it a moment ago.
            other = LeaseHolder("other-host", 1, "other", now + timedelta(seconds=30), now)
            self.holders[lease.partition] = other
            raise other.held_error(lease.partition, now)
        mine = LeaseHolder(lease.host, lease.pid, lease.run_id, now + timedelta(seconds=30), now)
        self.holders[lease.partition] = mine


async def test_each_lost_take_reads_again_and_tries_further_along() -> None:
    fleet = RacingFleet(beaten=2)
    lease = await claim_next(fleet, "me", CONFIG, asyncio.Event())  # type: ignore[arg-type]
    assert lease is not None
    # 1 lost; read again: 2-8 free; "me" spreads its second take 15 further along
    # (_spread): the last, 8, lost; again: 2-7 free, 6 further along: 7.
    assert [_spread("me", lost) for lost in range(3)] == [0, 15, 6]
    assert fleet.tried == [1, 8, 7]
    assert lease.partition == 7
    assert fleet.reads == 3  # a fresh read before each take


async def test_a_claim_ahead_gives_up_after_a_few_lost_takes() -> None:
    fleet = RacingFleet(beaten=10)
    held = frozenset({1})
    lease = await claim_ahead(fleet, "me", CONFIG, held)  # type: ignore[arg-type]
    # Never its own partition; three takes lost, then it drains first, claims after.
    assert lease is None
    assert fleet.tried == [2, 8, 7]
    assert fleet.reads == 3


def test_the_losers_of_one_race_spread_their_next_takes() -> None:
    """Nine workers lose the race for the lowest partition: one further along each,
    they would all race for the next one, and again, one winner a race (on the local
    BigQuery server, under ten workers, some lost six takes in a row, 20 s without a
    partition). Their next takes spread over the free partitions: most win at once."""
    runs = [hashlib.sha256(str(i).encode()).hexdigest()[:12] for i in range(9)]  # as uuid4's
    assert len({_spread(run, 1) for run in runs}) >= 6
    for run in runs:
        assert 1 <= _spread(run, 1) <= 16
        assert _spread(run, 0) == 0  # the first take: the lowest free partition
