"""Run samples on both stores: appended, the newest per partition, summed per time bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.stores import open_store
from friendscrape.stores.base import RunSample, Store

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def sample(
    run_id: str, partition: int, seconds: float, *, pages: int = 10, **fields: object
) -> RunSample:
    values: dict[str, object] = {
        "source": "x-api",
        "upstream_host": "127.0.0.1:8080",
        "simulated": True,
        "users_done": 2,
        "rate_limited": 1,
        "paused_seconds": 0.5,
    }
    values.update(fields)
    return RunSample(
        run_id=run_id,
        partition=partition,
        at=T0 + timedelta(seconds=seconds),
        pages=pages,
        **values,  # type: ignore[arg-type]
    )


async def test_no_samples_reads_empty(store: Store) -> None:
    assert await store.latest_samples() == {}
    assert await store.sample_buckets(60) == []


async def test_latest_sample_per_partition_and_buckets(store: Store) -> None:
    written = [
        sample("run-a", 1, 0, pages=0, users_done=0, rate_limited=0, paused_seconds=0.0),
        sample("run-a", 1, 15, pages=30, learned_rate=42.5),
        sample("run-a", 1, 30, pages=25, learned_rate=40.25),
        sample("run-a", 1, 75, pages=5, final=True, learned_rate=41.0),
        sample("run-b", 2, 10, pages=7, upstream_host="api.x.com", simulated=False),
        sample("run-b", 2, 70, pages=3, upstream_host="api.x.com", simulated=False),
    ]
    for one in written:
        await store.record_sample(one)

    latest = await store.latest_samples()
    assert sorted(latest) == [1, 2]
    assert latest[1] == written[3], "the final sample is partition 1's newest"
    assert latest[1].final
    assert latest[1].at == T0 + timedelta(seconds=75)
    assert latest[2].upstream_host == "api.x.com"
    assert not latest[2].simulated
    assert latest[2].learned_rate is None

    buckets = await store.sample_buckets(60)
    assert [(b.start, b.partition) for b in buckets] == [
        (T0, 1),
        (T0, 2),
        (T0 + timedelta(minutes=1), 1),
        (T0 + timedelta(minutes=1), 2),
    ]
    first = buckets[0]
    assert (first.pages, first.users_done, first.rate_limited, first.samples) == (55, 4, 2, 3)
    assert first.paused_seconds == pytest.approx(1.0)
    assert first.learned_rate == pytest.approx(40.25), "the lowest rate of the bucket"
    assert buckets[1].learned_rate is None
    assert sum(b.pages for b in buckets if b.partition == 1) == 60

    later = await store.sample_buckets(3600, since=T0 + timedelta(seconds=30))
    assert [(b.partition, b.pages, b.samples) for b in later] == [(1, 30, 2), (2, 3, 1)]
    assert later[0].start == T0


async def test_a_store_made_before_samples_reads_none(tmp_path: Path) -> None:
    """An older SQLite store opened read-only (no run_samples table) reads no samples."""
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE users (user_id TEXT PRIMARY KEY, screen_name TEXT);"
        "CREATE TABLE partitions (partition INTEGER PRIMARY KEY);"
        "CREATE TABLE user_friends (user_id TEXT PRIMARY KEY);"
    )
    conn.close()
    store = open_store(store_config(Settings(store=f"sqlite:///{path}")), read_only=True)
    await store.open()
    try:
        assert await store.latest_samples() == {}
        assert await store.sample_buckets(60) == []
    finally:
        await store.close()
