"""The limiter against the simulator's rate limits: a real local server and SQLite file.

Each run takes a few seconds of wall time by design (the limits are per second); the
pace is measured from the simulator's own per-second counters, over the whole seconds
strictly inside the run, and the limits are generous for a loaded machine.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from friendscrape.config import Settings
from friendscrape.core.assemble import limiter_config, run_config
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.credentials import CredentialPool
from friendscrape.fetch.http import Limiter
from friendscrape.fetch.limiter import HostLimiter, LimiterConfig, build_limiter
from friendscrape.models import Status, User
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore

RATE = 20


@asynccontextmanager
async def limited_sim(
    rate_limit: str, style: str, *, users: int, mean_friends: float = 15
) -> AsyncIterator[RunningSimulator]:
    config = SimConfig(
        users=users,
        latency=0.02,
        mean_friends=mean_friends,
        rate_limit=rate_limit,
        rate_limit_style=style,
    )
    async with run_simulator(config) as sim:
        yield sim


async def run_against(
    sim: RunningSimulator,
    tmp_path: Path,
    *,
    limiter: Limiter | None = None,
    **overrides: Any,
) -> PartitionRun:
    store = SqliteStore(tmp_path / "run.db")
    await store.open()
    try:
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()]
        )
        await store.plan_partitions(1)
        values: dict[str, Any] = {
            "store": f"sqlite:///{tmp_path / 'run.db'}",
            "base_url": sim.base_url,
            "concurrency": 20,
            "flush_interval": 0.2,
            "retry_base_wait": 0.05,
            "retry_max_wait": 0.5,
            "progress_interval": 60.0,
        }
        values.update(overrides)
        settings = Settings(**values)
        source = TwitterMobileSource(sim.base_url)
        lag = LoopLag()
        runner = PartitionRun(
            run_config(settings),
            store,
            source,
            partition=1,
            limiter=limiter
            if limiter is not None
            else build_limiter(
                limiter_config(settings),
                credential_hosts=source.credential_hosts,
                tokens=(),
                lag=lag.seconds,
            ),
            loop_lag=lag,
        )
        await runner.run()
        assert set(runner.stats.statuses) == {Status.OK.value}
        return runner
    finally:
        await store.close()


async def counters(sim: RunningSimulator) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/_sim/ratelimit") as response,
    ):
        data: dict[str, Any] = await response.json()
        return data


def steady_pace(per_second: dict[str, int]) -> float:
    """Mean requests per whole second, leaving out the first and last (partial) ones."""
    seconds = sorted(int(s) for s in per_second)
    inside = [per_second[str(s)] for s in range(seconds[0] + 1, seconds[-1])]
    assert len(inside) >= 3, f"run too short to measure a pace: {per_second}"
    return statistics.fmean(inside)


@pytest.mark.parametrize(
    ("rate_limit", "style"),
    [(str(RATE), "mastodon"), (f"{RATE}/1", "x-api"), (str(RATE), "bluesky")],
    ids=["token-bucket-mastodon", "fixed-window-x-api", "token-bucket-bluesky"],
)
async def test_finds_the_upstream_pace_by_itself(
    tmp_path: Path, rate_limit: str, style: str
) -> None:
    async with limited_sim(rate_limit, style, users=80) as sim:
        await run_against(sim, tmp_path)  # told nothing about the limit
        seen = await counters(sim)
    total = seen["allowed"] + seen["limited"]
    assert total >= 100
    assert seen["limited"] / total < 0.01
    assert abs(steady_pace(seen["per_second"]) - RATE) <= 0.1 * RATE


async def test_a_storm_of_429s_does_not_become_a_storm_of_retries(tmp_path: Path) -> None:
    # Retry-After only: the client cannot see the limit coming, only obey each 429.
    async with limited_sim(f"{RATE}/1", "retry-after", users=60) as sim:
        with capture_logs() as logs:
            runner = await run_against(sim, tmp_path)
        seen = await counters(sim)
    pauses = [e for e in logs if e["event"] == "limiter.paused"]
    assert pauses
    # No request was sent inside a wait a 429 asked for (once those in flight landed)...
    assert seen["early"] == 0
    # ... so each pause costs at most the requests in flight when it began.
    assert seen["limited"] <= len(pauses) * 20
    assert runner.stats.fetch.retries["rate_limited"] == seen["limited"]


async def test_a_long_pause_does_not_trip_the_stall_watchdog(tmp_path: Path) -> None:
    # 4 requests per 3 s window: the host is paused for most of every window, far longer
    # than stall_timeout, yet nothing waits unsaved, so the run must finish normally.
    async with limited_sim("4/3", "x-api", users=10, mean_friends=5) as sim:
        with capture_logs() as logs:
            runner = await run_against(sim, tmp_path, stall_timeout=0.8, flush_interval=0.1)
    assert runner.stats.users_saved == 10
    # The run was paused longer in all than the stall timeout: summed by the limiter, as
    # a slow machine's pauses can each be short enough to go unlogged.
    assert runner.sample_figures().paused_seconds > 0.8
    assert not [e for e in logs if e["event"] == "watchdog.stalled"]


async def test_two_tokens_double_the_pace_and_each_keeps_its_window(tmp_path: Path) -> None:
    async with limited_sim(f"{RATE // 2}/1", "x-api", users=80) as sim:
        pool = CredentialPool(["sim-token-one", "sim-token-two"])
        limiter = HostLimiter(LimiterConfig(concurrency=20), pools={"127.0.0.1": pool})
        await run_against(sim, tmp_path, limiter=limiter)
        seen = await counters(sim)
    total = seen["allowed"] + seen["limited"]
    assert seen["limited"] / total < 0.01
    assert abs(steady_pace(seen["per_second"]) - RATE) <= 0.1 * RATE
    assert pool.quota("token#1").taken > 0
    assert pool.quota("token#2").taken > 0
