"""The partition lease on both stores: one holder at a time, taken over once it lapses."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_retry_policy
from friendscrape.core.lease import LeaseConfig, held_partition
from friendscrape.errors import PartitionHeldError
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import Lease, Store
from friendscrape.stores.bigquery import BigQueryStore
from friendscrape.stores.sqlite import SqliteStore


def dead_pid() -> int:
    """The id of a process of this host that has already exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_held_partition_is_refused_naming_its_holder(store: Store) -> None:
    first = Lease(partition=1, run_id="run-first", ttl=60.0, host="worker-a", pid=4242)
    await store.acquire_lease(first)
    second = Lease(partition=1, run_id="run-second", ttl=60.0)
    with pytest.raises(PartitionHeldError) as held:
        await store.acquire_lease(second)
    text = str(held.value)
    assert "run-first" in text
    assert "worker-a" in text
    assert "4242" in text
    assert "expires in" in text
    assert held.value.exit_code == 6

    # Another partition is free; the holder renews; after release the second run gets it.
    await store.acquire_lease(Lease(partition=2, run_id="run-second", ttl=60.0))
    assert await store.renew_lease(first)
    await store.release_lease(first)
    await store.acquire_lease(second)
    assert not await store.renew_lease(first), "a released lease must not renew"
    assert await store.renew_lease(second)


async def test_a_lapsed_lease_is_taken_over_and_its_holder_learns_it(store: Store) -> None:
    # Another host: this one cannot tell whether the holder lives, so only the ttl frees it.
    first = Lease(partition=3, run_id="run-old", ttl=1.0, host="elsewhere.example", pid=1)
    await store.acquire_lease(first)
    second = Lease(partition=3, run_id="run-new", ttl=60.0)
    with pytest.raises(PartitionHeldError):
        await store.acquire_lease(second)
    deadline = time.monotonic() + 15.0
    while True:
        try:
            await store.acquire_lease(second)
            break
        except PartitionHeldError:
            assert time.monotonic() < deadline, "the lapsed lease was never taken over"
            await asyncio.sleep(0.2)
    assert not await store.renew_lease(first), "the old holder must learn it lost the lease"
    with pytest.raises(PartitionHeldError) as held:
        await store.acquire_lease(first)
    assert "run-new" in str(held.value)


async def test_a_dead_holder_on_this_host_is_taken_over_at_once(store: Store) -> None:
    gone = Lease(partition=4, run_id="run-killed", ttl=600.0, pid=dead_pid())
    await store.acquire_lease(gone)
    successor = Lease(partition=4, run_id="run-next", ttl=60.0)
    await store.acquire_lease(successor)
    assert await store.renew_lease(successor)
    assert not await store.renew_lease(gone)


async def test_a_run_that_loses_its_lease_is_told_to_stop(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "friendscrape.db")
    await store.open()
    lost = asyncio.Event()
    config = LeaseConfig(ttl=2.0, heartbeat=0.05, retry=store_retry_policy(Settings()))
    try:
        async with held_partition(store, 1, "run-mine", config, on_lost=lost.set) as state:
            assert state.lost is None
            # Another run takes the partition over (as after a long pause of this one).
            conn = sqlite3.connect(tmp_path / "friendscrape.db")
            conn.execute("UPDATE partition_leases SET run_id = 'run-other' WHERE partition = 1")
            conn.commit()
            conn.close()
            async with asyncio.timeout(10):
                await lost.wait()
            assert state.lost == "another run took it over"
        # The lease now belongs to the other run: leaving the block must not delete it.
        with pytest.raises(PartitionHeldError, match="run-other"):
            await store.acquire_lease(Lease(partition=1, run_id="run-third", ttl=60.0))
    finally:
        await store.close()


async def test_a_heartbeat_is_one_statement_where_the_store_counts_changed_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BigQuery tells how many rows a statement changed: a renewal reads that, not the
    lease rows again (two statements a heartbeat were three, with the run's samples)."""
    if not isinstance(store, BigQueryStore):
        pytest.skip("SQLite renews in one transaction already")
    statements: list[str] = []
    query = store.client.query

    def counted(sql: str, *args: object, **kwargs: object) -> object:
        statements.append(sql.split(maxsplit=1)[0])
        return query(sql, *args, **kwargs)

    first = Lease(partition=1, run_id="run-first", ttl=60.0)
    await store.acquire_lease(first)
    monkeypatch.setattr(store.client, "query", counted)
    assert await store.renew_lease(first)
    assert statements == ["UPDATE"]
    # Taken over (its process is gone): the old holder's renewal changes no row.
    gone = Lease(partition=2, run_id="run-killed", ttl=600.0, pid=dead_pid())
    await store.acquire_lease(gone)
    await store.acquire_lease(Lease(partition=2, run_id="run-next", ttl=60.0))
    statements.clear()
    assert not await store.renew_lease(gone)
    assert statements == ["UPDATE"]
    await store.release_lease(first)
    statements.clear()
    assert not await store.renew_lease(first), "a released lease must not renew"
    assert statements == ["UPDATE"]


def _ok(user_id: str) -> FriendList:
    now = datetime.now(UTC)
    return FriendList(user_id, f"name_{user_id}", Status.OK, "twitter-mobile", 0, now, now, ("f",))


async def test_a_claim_reads_pending_partitions_and_every_lease_at_once(store: Store) -> None:
    """``claim_view`` is ``pending_partitions`` and ``leases`` in one read (one statement
    on BigQuery): lapsed and live leases alike, a done partition's lease too, the
    first row of a partition winning; nothing when no partition is pending."""
    await store.import_users([User(str(i), f"name_{i}", 5) for i in range(1, 10)])
    await store.plan_partitions(3)  # 1..3, 4..6, 7..9
    await store.save([_ok(str(i)) for i in (4, 5, 6)])
    await store.acquire_lease(Lease(partition=1, run_id="run-a", ttl=60.0, host="a.example"))
    await store.acquire_lease(Lease(partition=2, run_id="run-b", ttl=60.0, host="b.example"))
    pending, leases = await store.claim_view(retry_failed=False)
    assert pending == [1, 3] == await store.pending_partitions(retry_failed=False)
    assert leases == await store.leases()
    assert {p: h.run_id for p, h in leases.items()} == {1: "run-a", 2: "run-b"}
    assert leases[1].host == "a.example"
    await store.save([_ok(str(i)) for i in (1, 2, 3, 7, 8, 9)])
    assert await store.claim_view(retry_failed=False) == ([], {})


async def test_a_claim_reads_the_pages_left_of_a_partly_collected_partition(
    store: Store,
) -> None:
    """``claim_read``: ``claim_view``, and the expected pages left of a partition whose
    holder died halfway (its lease row left behind), weighed as ``partition_pages``
    weighs them (an unknown count the known ones' median): a claim taking it over
    weighs what is left, not its whole plan. On BigQuery every pending partition's, in
    the same one statement; on SQLite those with a lease row."""
    page = 20
    # Weights ceil(count / 20) + 1: 2, 6, 11, 2, 6, 6 known (median 6), user 1 unknown.
    counts: list[int | None] = [None, 100, 200, 20, 100, 100, 20]
    await store.import_users([User(str(i + 1), f"name_{i + 1}", c) for i, c in enumerate(counts)])
    await store.plan_partitions(2, page_size=page)
    plan = await store.partition_pages(page)
    members = {}
    for part in plan:
        found = await store.pending_users(part, retry_failed=False, cursor=None, limit=100)
        members[part] = [u.user_id for u in found.users]
    assert members[1][:2] == ["1", "2"]
    await store.acquire_lease(Lease(partition=1, run_id="run-dead", ttl=60.0, pid=dead_pid()))
    await store.save([_ok("2")])
    read = await store.claim_read(retry_failed=False, page_size=page)
    assert read.pending == [1, 2]
    assert read.leases == await store.leases()
    assert read.left[1] == plan[1] - 6  # user 2's pages done; user 1 weighs the median
    assert read.users[1] == 2 == await store.pending_count(1, retry_failed=False)
    if isinstance(store, BigQueryStore):
        assert read.left[2] == plan[2]
        assert read.users[2] == len(members[2])
    else:
        assert 2 not in read.left  # no lease row: its plan weight is what is left
    assert (await store.claim_read(retry_failed=False, page_size=None)).left[1] == len(
        members[1]
    ) - 1


async def test_sqlite_claims_sort_the_known_following_counts_once(tmp_path: Path) -> None:
    """On SQLite the weight of a user with no following count (the known counts' median,
    a sort of them all: seconds at millions of users) is read once a store, for the
    plan's weights a worker reads first, and kept: not sorted again at each claim while
    the store's thread holds up saves."""
    store = SqliteStore(tmp_path / "job.db")
    await store.open()
    try:
        counts: list[int | None] = [None, 100, 200, 20, 100, 100, 20]
        await store.import_users(
            [User(str(i + 1), f"name_{i + 1}", c) for i, c in enumerate(counts)]
        )
        await store.plan_partitions(2, page_size=20)
        await store.acquire_lease(Lease(partition=1, run_id="run-dead", ttl=60.0, pid=dead_pid()))
        sorts: list[str] = []
        conn = store._conn
        assert conn is not None
        conn.set_trace_callback(lambda sql: sorts.append(sql) if "OFFSET" in sql else None)
        weights = await store.partition_pages(20)  # a worker's first read: the plan's
        first = await store.claim_read(retry_failed=False, page_size=20)
        again = await store.claim_read(retry_failed=False, page_size=20)
        conn.set_trace_callback(None)
        assert first.left == again.left
        assert first.left[1] == 6 + 6 + 11  # users 1 (the median, 6), 2 and 3
        assert sum(weights.values()) == 6 + 6 + 11 + 2 + 6 + 6 + 2  # user 1 the median
        assert len(sorts) == 1, sorts
    finally:
        await store.close()
