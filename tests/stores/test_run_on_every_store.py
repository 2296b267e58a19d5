"""A whole partition run and export on every store: SQLite and the local BigQuery server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import redirect_stdout

import pytest

from friendscrape.commands.export import export
from friendscrape.config import Settings
from friendscrape.core.assemble import build_run, limiter_config, run_config
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.limiter import build_limiter
from friendscrape.models import Status, User
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.base import Store


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with run_simulator(SimConfig(users=60, latency=0.0, mean_friends=30)) as running:
        yield running


async def run_partition(
    store: Store, store_settings: Settings, sim: RunningSimulator, number: int
) -> PartitionRun:
    settings = store_settings.model_copy(
        update={"base_url": sim.base_url, "concurrency": 10, "flush_interval": 0.2}
    )
    source = TwitterMobileSource(sim.base_url)
    lag = LoopLag()
    runner = PartitionRun(
        run_config(settings),
        store,
        source,
        partition=number,
        loop_lag=lag,
        limiter=build_limiter(
            limiter_config(settings),
            credential_hosts=source.credential_hosts,
            tokens=(),
            lag=lag.seconds,
        ),
    )
    await runner.run()
    return runner


async def test_run_and_export_give_one_true_row_per_user(
    store: Store, store_settings: Settings, sim: RunningSimulator
) -> None:
    await store.import_users(
        [User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()]
    )
    plan = await store.plan_partitions(2)
    await run_partition(store, store_settings, sim, 1)
    requests = sim.stats.total
    again = await run_partition(store, store_settings, sim, 1)
    assert sim.stats.total == requests  # a finished partition sends no request
    assert again.stats.users_done == 0

    out = io.StringIO()
    with redirect_stdout(out):
        written = await export(store.results(), "jsonl", None)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == len(rows) == plan[0].user_count
    assert len({r["user_id"] for r in rows}) == len(rows)
    for row in rows:
        expected = sim.graph.expected(row["screen_name"])
        assert row["status"] == expected["status"], row["screen_name"]
        if row["status"] == Status.OK.value:
            assert row["friend_names"] == expected["friends"]
        assert row["partition"] == 1


async def test_a_run_given_its_pending_users_does_not_count_them_again(
    store: Store, store_settings: Settings, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --partition next`` hands a run the pending users its claim's read counted:
    the run does not count them again (a statement a partition on BigQuery), and still
    collects every pending user, even when the count handed was off."""
    await store.import_users(
        [User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()]
    )
    plan = await store.plan_partitions(2)
    counted: list[int] = []
    real = store.pending_count

    async def pending_count(partition: int, *, retry_failed: bool) -> int:
        counted.append(partition)
        return await real(partition, retry_failed=retry_failed)

    monkeypatch.setattr(store, "pending_count", pending_count)
    settings = store_settings.model_copy(
        update={"base_url": sim.base_url, "concurrency": 10, "flush_interval": 0.2}
    )
    runner = build_run(
        settings, store, 1, source=TwitterMobileSource(sim.base_url), pending=plan[0].user_count + 5
    )
    await runner.run()
    assert counted == []
    assert runner.stats.users_done == plan[0].user_count
    assert await real(1, retry_failed=False) == 0
