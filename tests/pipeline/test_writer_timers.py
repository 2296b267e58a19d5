"""The writer's timers: a batch's first write runs under one timer that is both its
write timeout and, once the run is stopping, the stop's deadline. A first write that
outlasts the write timeout is retried; a stop during it pulls the timer in to the stop's
deadline, never past the write timeout. Against the simulator and a real SQLite file,
the store's first save held (awaiting a future nobody completes) to make it outlast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from friendscrape.core.assemble import run_config
from friendscrape.core.pipeline import PartitionRun
from friendscrape.errors import RunAbortedError
from friendscrape.models import FriendList, User
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore
from pipeline.test_run_against_simulator import settings_for


class _HeldStore(SqliteStore):
    """A SQLite store whose first save never ends by itself (a store that hangs); the
    run's ``stop`` is set when it starts, if given."""

    stop: asyncio.Event | None = None
    held = 0

    async def save(self, results: Sequence[FriendList]) -> None:
        if self.held == 0:
            self.held += 1
            if self.stop is not None:
                self.stop.set()
            await asyncio.get_running_loop().create_future()
        await super().save(results)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with run_simulator(SimConfig(users=60, latency=0.0, mean_friends=20)) as running:
        yield running


@pytest.fixture
async def store(tmp_path: Path, sim: RunningSimulator) -> AsyncIterator[_HeldStore]:
    db = _HeldStore(tmp_path / "run.db")
    await db.open()
    await db.import_users(
        [User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()]
    )
    await db.plan_partitions(1)
    yield db
    await db.close()


def _run(
    sim: RunningSimulator, store: SqliteStore, stop: asyncio.Event, **overrides: object
) -> PartitionRun:
    settings = settings_for(sim, store.path, batch_size=10, **overrides)
    return PartitionRun(
        run_config(settings), store, TwitterMobileSource(sim.base_url), partition=1, stop=stop
    )


async def _saved(store: SqliteStore) -> int:
    return len([r async for r in store.results()])


async def test_a_first_write_past_the_write_timeout_is_retried(
    sim: RunningSimulator, store: _HeldStore
) -> None:
    with capture_logs() as logs:
        await _run(sim, store, asyncio.Event(), write_timeout=0.3).run()
    retries = [e for e in logs if e["event"] == "writer.retry"]
    assert len(retries) == 1
    assert retries[0]["error"] == "write of 10 rows took over 0.3s"
    assert not [e for e in logs if e["event"] == "writer.failed"]
    assert await _saved(store) == 60


async def test_a_stop_during_a_first_write_pulls_its_timer_in_to_the_stop_s_deadline(
    sim: RunningSimulator, store: _HeldStore
) -> None:
    stop = asyncio.Event()
    store.stop = stop
    loop = asyncio.get_running_loop()
    started = loop.time()
    # 2.3 s of stop budget keep 0.3 s for the writes (2 s go to closing and exiting);
    # the write timeout alone would hold the run for a minute.
    with capture_logs() as logs, pytest.raises(RunAbortedError):
        await _run(sim, store, stop, write_timeout=60.0, stop_timeout=2.3).run()
    assert loop.time() - started < 30
    (failed,) = [e for e in logs if e["event"] == "writer.failed"]
    assert failed["cause"] == "stop_timeout"
    assert "within the stop's 2.3s (stop_timeout)" in failed["error"]


async def test_a_stop_during_a_first_write_never_pushes_its_write_timeout_out(
    sim: RunningSimulator, store: _HeldStore
) -> None:
    stop = asyncio.Event()
    store.stop = stop
    with capture_logs() as logs:
        await _run(sim, store, stop, write_timeout=0.3, stop_timeout=60.0).run()
    retries = [e for e in logs if e["event"] == "writer.retry"]
    assert [e["error"] for e in retries] == ["write of 10 rows took over 0.3s"]
    assert not [e for e in logs if e["event"] == "writer.failed"]
    assert await _saved(store) >= 10  # the held batch, saved by its retry
