"""The pipeline against the simulator (a real local server) and a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from friendscrape.config import Settings
from friendscrape.core.assemble import run_config
from friendscrape.core.pipeline import PartitionRun
from friendscrape.models import FriendList, Status, User
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore


def settings_for(sim: RunningSimulator, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "store": f"sqlite:///{db}",
        "base_url": sim.base_url,
        "concurrency": 20,
        "batch_size": 25,
        "flush_interval": 0.2,
        "retry_base_wait": 0.01,
        "retry_max_wait": 0.05,
        "progress_interval": 60.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with run_simulator(SimConfig(users=120, latency=0.0, mean_friends=60)) as running:
        yield running


@pytest.fixture
async def store(tmp_path: Path, sim: RunningSimulator) -> AsyncIterator[SqliteStore]:
    db = SqliteStore(tmp_path / "run.db")
    await db.open()
    await db.import_users(
        [User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()]
    )
    await db.plan_partitions(2)
    yield db
    await db.close()


async def results_of(store: SqliteStore) -> dict[str, FriendList]:
    return {r.user_id: r async for r in store.results()}


async def collect(
    sim: RunningSimulator, store: SqliteStore, partition: int, **overrides: Any
) -> PartitionRun:
    settings = settings_for(sim, store.path, **overrides)
    runner = PartitionRun(
        run_config(settings),
        store,
        TwitterMobileSource(sim.base_url),
        partition=partition,
    )
    await runner.run()
    return runner


async def test_every_user_of_the_partition_gets_one_true_row(
    sim: RunningSimulator, store: SqliteStore
) -> None:
    await collect(sim, store, 1)
    rows = await results_of(store)
    part = (await store.partitions())[0]
    in_partition = [
        a
        for a in sim.graph.accounts()
        if int(part.min_user_id) <= int(a.user_id) <= int(part.max_user_id)
    ]
    assert len(rows) == part.user_count == len(in_partition)
    statuses = set()
    for account in in_partition:
        row = rows[account.user_id]
        expected = sim.graph.expected(account.screen_name)
        assert row.status.value == expected["status"], account
        statuses.add(row.status)
        if row.status is Status.OK:
            assert list(row.friend_names) == expected["friends"][: len(row.friend_names)]
            assert row.truncated == (len(expected["friends"]) > 2000)
            assert row.partition == 1
        else:
            assert row.friend_names == ()
    assert Status.OK in statuses
    # partition 2 untouched
    assert all(r.partition == 1 for r in rows.values())


async def test_second_run_of_a_finished_partition_sends_no_request(
    sim: RunningSimulator, store: SqliteStore
) -> None:
    await collect(sim, store, 1)
    before = sim.stats.total
    assert before > 0
    runner = await collect(sim, store, 1)
    assert sim.stats.total == before
    assert runner.stats.users_done == 0


async def test_max_friends_caps_the_list_exactly_and_marks_it_truncated(
    sim: RunningSimulator, store: SqliteStore
) -> None:
    await collect(sim, store, 2, max_friends=30)
    truncated = 0
    for row in (await results_of(store)).values():
        if row.status is not Status.OK:
            continue
        truth = sim.graph.friends(row.screen_name)
        assert list(row.friend_names) == truth[:30]
        assert row.truncated == (len(truth) > 30)
        truncated += row.truncated
    assert truncated > 0


async def test_users_limit_stops_after_that_many(sim: RunningSimulator, store: SqliteStore) -> None:
    await collect(sim, store, 1, users_limit=7)
    assert await store.result_count() == 7


async def test_failed_users_are_kept_with_the_error_and_retried_later(
    tmp_path: Path, store: SqliteStore
) -> None:
    config = SimConfig(users=120, latency=0.0, mean_friends=60, error_rate=1.0)
    async with run_simulator(config) as broken:
        await collect(broken, store, 1, fetch_attempts=2)
    rows = await results_of(store)
    failed = [r for r in rows.values() if r.status is Status.FAILED]
    invalid = [r for r in rows.values() if r.status is Status.INVALID]
    assert failed
    assert len(failed) + len(invalid) == len(rows)
    assert all("HTTP 500" in (r.error or "") for r in failed)
    async with run_simulator(SimConfig(users=120, latency=0.0, mean_friends=60)) as healthy:
        await collect(healthy, store, 1, retry_failed=True)
        rows = await results_of(store)
        assert not [r for r in rows.values() if r.status is Status.FAILED]
        for row in rows.values():
            if row.status is Status.OK:
                assert list(row.friend_names) == healthy.graph.friends(row.screen_name)
                assert row.attempts == 2


async def test_progress_and_finish_are_structured_events(
    sim: RunningSimulator, store: SqliteStore
) -> None:
    with capture_logs() as events:
        await collect(sim, store, 1)
    names = [e["event"] for e in events]
    assert "run.started" in names
    finished = next(e for e in events if e["event"] == "run.finished")
    assert finished["users"] == (await store.partitions())[0].user_count
