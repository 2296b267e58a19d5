"""A run as users start it (a new process) writes its samples: the store then tells what
the run met (users, pages, 429s, pauses), where it ran (the simulator's host, marked as
simulated) and nothing more (no path, no token), on each store."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.simulator import SimConfig
from friendscrape.stores import open_store
from friendscrape.stores.base import RunSample
from reliability.harness import SimProcess, clean_env, run_cli, start_cli, start_simulator

pytestmark = pytest.mark.slow

USERS = 40
TOKEN = "tok-sample-secret-9"


@dataclass(frozen=True)
class Job:
    url: str
    env: dict[str, str]
    settings: Settings


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    # Heartbeats every half second: a run of a few seconds writes several samples.
    fast = {"FRIENDSCRAPE_LEASE_HEARTBEAT": "0.5", "FRIENDSCRAPE_X_BEARER_TOKENS": TOKEN}
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'job.db'}"
        return Job(url, clean_env(**fast), Settings(store=url))
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    url = f"bigquery://test-project/{dataset}"
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=emulator.grpc_endpoint,
        # The local server takes a DML statement in about a second: beat less often.
        **(fast | {"FRIENDSCRAPE_LEASE_HEARTBEAT": "2", "FRIENDSCRAPE_WRITE_TIMEOUT": "20"}),
    )
    return Job(url, env, Settings(store=url, bigquery_endpoint=emulator.endpoint))


@pytest.fixture
def sim() -> Iterator[SimProcess]:
    """Some pages answered 429 with Retry-After: 1, so the run pauses now and then (a
    simulator per test: its faults fall on the same requests each time it starts)."""
    config = SimConfig(
        users=USERS, mean_friends=25.0, latency=0.01, rate_limit_rate=0.04, retry_after=1
    )
    process = start_simulator(config)
    try:
        yield process
    finally:
        process.stop()


def sim_stats(sim: SimProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.base_url}/_sim/stats", timeout=10) as response:  # noqa: S310
        data: dict[str, Any] = json.load(response)
        return data


async def read_samples(settings: Settings) -> tuple[dict[int, RunSample], list[Any]]:
    store = open_store(store_config(settings), read_only=True)
    await store.open()
    try:
        return await store.latest_samples(), await store.sample_buckets(3600)
    finally:
        await store.close()


async def test_a_cli_run_writes_samples_that_add_up(
    job: Job, sim: SimProcess, tmp_path: Path
) -> None:
    graph = sim.config.make_graph()
    users_csv = tmp_path / "users.csv"
    rows = ["user_id,screen_name,following_count"]
    rows += [f"{a.user_id},{a.screen_name},{a.following_count}" for a in graph.accounts()]
    users_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for step in (("users", "import", str(users_csv)), ("partitions", "plan", "--count", "1")):
        code, done = await run_cli([*step, "--store", job.url], env=job.env)
        assert code == 0, done.tail()

    before = sim_stats(sim)
    code, ran = await run_cli(
        [
            "run",
            "--store",
            job.url,
            "--partition",
            "1",
            "--source",
            "twitter-mobile",
            "--base-url",
            sim.base_url,
        ],
        env=job.env,
        timeout=120,
    )
    assert code == 0, ran.tail()
    after = sim_stats(sim)

    latest, buckets = await read_samples(job.settings)
    assert sorted(latest) == [1]
    last = latest[1]
    port = sim.base_url.rsplit(":", 1)[1]
    assert last.upstream_host == f"127.0.0.1:{port}"
    assert last.simulated
    assert last.final, "the run's last sample is marked final"
    assert last.source == "twitter-mobile"
    assert TOKEN not in repr(last)

    served_429 = after["by_status"].get("429", 0) - before["by_status"].get("429", 0)
    answered = after["pages"] - before["pages"] - served_429
    assert served_429 > 0, "the simulator should have rate limited some pages"
    assert sum(b.users_done for b in buckets) == USERS
    assert sum(b.pages for b in buckets) == answered
    assert sum(b.rate_limited for b in buckets) == served_429
    # Each 429 asked for a one-second pause (some overlap): paused time shows.
    assert sum(b.paused_seconds for b in buckets) >= 0.9
    assert sum(b.samples for b in buckets) >= 3, "a start, heartbeats and a final sample"

    # status, as users run it, shows what the run met and where.
    code, shown = await run_cli(["status", "--store", job.url, "--window", "900"], env=job.env)
    assert code == 0, shown.tail()
    table = shown.stdout_other
    assert all(len(line) <= 100 for line in table), table
    # The first lines name the job; the table's header follows (the window's own rate
    # column is in the wide table only).
    head = next(line for line in table if line.split()[:1] == ["part"]).split()
    assert "users/day" in head
    code, wide = await run_cli(
        ["status", "--store", job.url, "--window", "900", "--wide"], env=job.env
    )
    assert code == 0, wide.tail()
    wide_head = next(line for line in wide.stdout_other if line.split()[:1] == ["part"])
    assert "users/day 15m" in wide_head
    assert f"rates measured against a local simulator (127.0.0.1:{port}), not a real upstream" in (
        " ".join(table)
    )
    code, shown = await run_cli(["status", "--store", job.url, "--json"], env=job.env)
    assert code == 0, shown.tail()
    doc = json.loads("\n".join(shown.stdout_other))
    assert doc["window_seconds"] == 3600
    assert doc["window"] == "1h"
    assert doc["data_seconds"] < 3600, "the run is younger than the window"
    row = doc["partitions"][0]
    assert row["rate_limited"] == served_429
    assert row["simulated"] is True
    assert row["upstream_host"] == f"127.0.0.1:{port}"
    assert row["paused_seconds"] >= 0.9


async def test_a_run_stopped_by_sigterm_writes_its_final_sample(tmp_path: Path) -> None:
    config = SimConfig(users=150, mean_friends=25.0, latency=0.1)
    sim = start_simulator(config)
    try:
        url = f"sqlite:///{tmp_path / 'job.db'}"
        env = clean_env(FRIENDSCRAPE_LEASE_HEARTBEAT="0.5")
        users_csv = tmp_path / "users.csv"
        rows = ["user_id,screen_name,following_count"]
        rows += [
            f"{a.user_id},{a.screen_name},{a.following_count}"
            for a in config.make_graph().accounts()
        ]
        users_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        for step in (("users", "import", str(users_csv)), ("partitions", "plan", "--count", "1")):
            code, done = await run_cli([*step, "--store", url], env=env)
            assert code == 0, done.tail()
        run = await start_cli(
            [
                "run",
                "--store",
                url,
                "--partition",
                "1",
                "--source",
                "twitter-mobile",
                "--base-url",
                sim.base_url,
                "--concurrency",
                "4",
            ],
            env=env,
        )
        await run.wait_event("progress", where=lambda e: e.get("done", 0) >= 10)
        run.send(signal.SIGTERM)
        assert await run.wait(60) == 128 + signal.SIGTERM, run.tail()  # users left pending
    finally:
        sim.stop()

    settings = Settings(store=url)
    latest, buckets = await read_samples(settings)
    assert latest[1].final, "the stopped run's last sample is final"
    store = open_store(store_config(settings), read_only=True)
    await store.open()
    try:
        saved = await store.result_count()
    finally:
        await store.close()
    assert 10 <= saved < 150, "stopped midway"
    assert sum(b.users_done for b in buckets) == saved
