"""`status` figures on both stores: the aggregate query, the plan, rates and ETA."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from friendscrape.commands.progress.figures import STATUSES, gather_status
from friendscrape.commands.status.command import SCHEMA_VERSION, to_json
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import Lease, RunSample, Store

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def result(
    user_id: str, status: Status, *, names: int, start: datetime, seconds: float
) -> FriendList:
    return FriendList(
        user_id=user_id,
        screen_name=f"name_{user_id}",
        status=status,
        source="twitter-mobile",
        partition=0,  # the plan's partition wins over the row's
        start_at=start,
        end_at=start + timedelta(seconds=seconds),
        friend_names=tuple(f"f{i}" for i in range(names)),
        following_count=names,
    )


async def fill(store: Store) -> None:
    await store.import_users([User(str(i), f"name_{i}", 5) for i in range(1, 11)])
    await store.plan_partitions(2)  # 1..5 and 6..10
    two_hours_ago = NOW - timedelta(hours=2)
    ten_min_ago = NOW - timedelta(minutes=10)
    await store.save(
        [
            result("1", Status.OK, names=2, start=two_hours_ago, seconds=2),
            result("2", Status.OK, names=4, start=two_hours_ago, seconds=4),
            result("3", Status.OK, names=6, start=ten_min_ago, seconds=6),
            result("4", Status.PROTECTED, names=0, start=ten_min_ago, seconds=1.5),
            result("6", Status.FAILED, names=0, start=two_hours_ago, seconds=30),
        ]
    )


async def test_summary_groups_by_plan_partition_and_status(store: Store) -> None:
    await fill(store)
    rows = await store.partition_summary(since=NOW - timedelta(hours=1))
    got = {(r.partition, r.status): r for r in rows}
    assert set(got) == {(1, "ok"), (1, "protected"), (2, "failed")}
    ok = got[1, "ok"]
    assert (ok.users, ok.friends, ok.recent) == (3, 12, 1)
    assert ok.seconds == pytest.approx(12.0, abs=0.01)
    assert ok.first_start == NOW - timedelta(hours=2)
    assert ok.last_end == NOW - timedelta(minutes=10, seconds=-6)
    assert ok.first_start.tzinfo is not None
    assert ok.last_end.tzinfo is not None
    assert got[2, "failed"].recent == 0


async def test_empty_store_has_no_summary(store: Store) -> None:
    assert await store.partition_summary(since=NOW) == []


async def test_status_report_on_store(store: Store) -> None:
    await fill(store)
    # A run on another host holds partition 1 (its lease lives past NOW); none holds 2.
    await store.acquire_lease(Lease(1, "run-a", ttl=3600.0, host="worker.example", pid=7))
    report = await gather_status(store, now=NOW)
    p1, p2 = report.partitions
    assert (p1.partition, p1.users, p1.collected, p1.remaining) == (1, 5, 4, 1)
    assert p1.statuses["ok"] == 3
    assert p1.statuses["protected"] == 1
    assert p1.avg_friends == pytest.approx(4.0)
    assert p1.avg_seconds == pytest.approx(13.5 / 4, abs=0.01)
    assert p1.percent_done == pytest.approx(80.0)
    # Running since its first result two hours ago (no samples): 4 users in 2 h, and
    # two of them in the last hour, are 48 users a day either way.
    assert p1.running
    assert p1.per_day_overall == pytest.approx(48.0)
    assert p1.per_day_last_hour == pytest.approx(48.0)
    assert p1.eta_seconds == pytest.approx(86400 / 48)
    assert (p2.collected, p2.remaining, p2.statuses["failed"]) == (1, 4, 1)
    # Partition 2 ran for 30 s (one user) and nobody runs it now: a rate, no ETA. Before
    # issue 23 it showed 2 minutes, as if a worker went on at that rate.
    assert not p2.running
    assert p2.per_day_overall == pytest.approx(86400 / 30)
    assert p2.per_day_last_hour == 0
    assert p2.eta_seconds is None
    total = report.total
    assert (total.users, total.collected, total.remaining) == (10, 5, 5)
    # The job's users left at the running workers' rate (partition 1's alone).
    assert total.per_day_overall == pytest.approx(48.0)
    assert total.eta_seconds == pytest.approx(5 * 86400 / 48)
    assert report.facts is not None
    assert report.facts.platform == "twitter-mobile"
    assert report.facts.workers_seen == 1

    doc = json.loads(json.dumps(to_json(report)))
    assert doc["schema"] == SCHEMA_VERSION
    assert [row["partition"] for row in doc["partitions"]] == [1, 2]
    assert set(doc["total"]["statuses"]) == set(STATUSES)
    assert doc["total"]["first_start"] == "2024-05-01T10:00:00+00:00"


class AggregatesOnly:
    """A store that answers only the aggregate reads: status must need nothing else."""

    ALLOWED = frozenset(
        {
            "partitions",
            "partition_summary",
            "user_count",
            "unplaced_count",
            "latest_samples",
            "sample_buckets",
            "leases",
            "run_spans",
            "source_counts",
            "job_platform",
            "plan_cut",
        }
    )

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        if name not in self.ALLOWED:
            msg = f"status read {name}, which is not an aggregate"
            raise AssertionError(msg)
        return getattr(self._store, name)


async def test_status_reads_aggregates_and_run_samples_only(store: Store) -> None:
    await fill(store)
    for seconds, limited, final in ((-1800, 4, False), (-600, 3, False), (-60, 2, True)):
        await store.record_sample(
            RunSample(
                run_id="run-1",
                partition=1,
                at=NOW + timedelta(seconds=seconds),
                source="x-api",
                upstream_host="127.0.0.1:9999",
                simulated=True,
                users_done=1,
                pages=5,
                rate_limited=limited,
                paused_seconds=2.5,
                learned_rate=30.0 + limited,
                final=final,
            )
        )
    report = await gather_status(cast("Store", AggregatesOnly(store)), now=NOW, window=900)
    p1, p2 = report.partitions
    assert p1.run is not None
    # Only the samples of the last 15 minutes count; the learned rate is the newest one's.
    assert (p1.run.rate_limited, p1.run.paused_seconds) == (5, 5.0)
    assert p1.run.learned_rate == 32.0
    assert p1.run.finished
    assert p1.run.simulated
    assert p2.run is None
    doc = to_json(report)
    assert doc["window_seconds"] == 900
    assert doc["window"] == "15m"
    assert (
        "rates measured against a local simulator (127.0.0.1:9999), not a real upstream"
        in (doc["notes"])
    )
