"""A claim is one take (issue 24): the store takes the first of the free partitions a
worker read that no other live run holds by then, in one statement on BigQuery (a
``MERGE`` choosing the partition as it runs), so a worker whose read went stale takes the
next free one instead of losing the race. On both stores."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from friendscrape.errors import PartitionHeldError
from friendscrape.stores.base import Lease, Store
from stores.test_lease import dead_pid


async def test_a_claim_takes_the_first_candidate_no_live_run_holds(store: Store) -> None:
    await store.acquire_lease(Lease(partition=1, run_id="run-a", ttl=60.0, host="a.example"))
    await store.acquire_lease(Lease(partition=2, run_id="run-b", ttl=60.0, host="b.example"))
    lease = await store.claim_lease("run-me", 60.0, [1, 2, 3, 4], {})
    assert lease is not None
    assert (lease.partition, lease.run_id) == (3, "run-me")
    assert await store.renew_lease(lease)
    # The order given is the order tried; held ones are skipped, never taken over.
    lease = await store.claim_lease("run-me", 60.0, [2, 5, 4], {})
    assert lease is not None
    assert lease.partition == 5
    assert await store.claim_lease("run-other", 60.0, [1, 2, 3, 5], {}) is None
    held = await store.leases()
    assert {part: held[part].run_id for part in held} == {
        1: "run-a",
        2: "run-b",
        3: "run-me",
        5: "run-me",
    }
    with pytest.raises(PartitionHeldError, match="run-me"):
        await store.acquire_lease(Lease(partition=3, run_id="run-other", ttl=60.0))


async def test_a_claim_takes_over_a_lapsed_lease_and_a_dead_holder_of_this_host(
    store: Store,
) -> None:
    lapsed = Lease(partition=1, run_id="run-old", ttl=1.0, host="elsewhere.example", pid=1)
    await store.acquire_lease(lapsed)
    killed = Lease(partition=2, run_id="run-killed", ttl=600.0, pid=dead_pid())
    await store.acquire_lease(killed)
    # The dead process's lease, named as gone by the claiming worker, goes at once.
    lease = await store.claim_lease("run-new", 60.0, [1, 2], {2: "run-killed"})
    assert lease is not None
    assert lease.partition == 2
    assert not await store.renew_lease(killed)
    deadline = time.monotonic() + 15.0
    while (lease := await store.claim_lease("run-new", 60.0, [1], {})) is None:
        assert time.monotonic() < deadline, "the lapsed lease was never taken over"
        await asyncio.sleep(0.2)  # polling the ttl's lapse, not ordering events
    assert lease.partition == 1
    assert not await store.renew_lease(lapsed), "the old holder must learn it lost it"


async def test_claims_racing_for_a_few_partitions_leave_each_one_holder(store: Store) -> None:
    """Six claims at once over the same read of four free partitions: four win one each
    (none loses to a stale read while a partition is free), two find none free."""
    runs = [f"run-{i}" for i in range(6)]
    taken = await asyncio.gather(*(store.claim_lease(run, 60.0, [1, 2, 3, 4], {}) for run in runs))
    won = [lease for lease in taken if lease is not None]
    assert sorted(lease.partition for lease in won) == [1, 2, 3, 4]
    assert Counter(lease.run_id for lease in won).most_common(1)[0][1] == 1
    held = await store.leases()
    assert {part: held[part].run_id for part in held} == {
        lease.partition: lease.run_id for lease in won
    }


async def test_a_take_naming_a_gone_holder_still_skips_live_ones(store: Store) -> None:
    await store.acquire_lease(Lease(partition=1, run_id="run-a", ttl=60.0, host="a.example"))
    lease = await store.claim_lease("run-me", 60.0, [1, 2], {7: "run-dead"})
    assert lease is not None
    assert lease.partition == 2
    assert await store.claim_lease("run-other", 60.0, [1, 2], {7: "run-dead"}) is None
