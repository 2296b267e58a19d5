"""Users files of handles: each handle is looked up once in all, across a kill -9 and a
resume, and every user ends with the simulator's truth (processes, a real SQLite file)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from friendscrape.simulator import SimConfig, SyntheticGraph
from friendscrape.simulator.formats import api_truth, import_user, write_users_csv
from friendscrape.sources.mastodon import MastodonSource
from friendscrape.sources.x_api import XApiSource
from reliability.harness import (
    SimProcess,
    clean_env,
    graph_config,
    integrity,
    kill_now,
    results,
    run_cli,
    start_cli,
    start_simulator,
    store_url,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def own_sim() -> Iterator[SimProcess]:
    """A simulator of this test alone, so its look-up counters are this test's."""
    sim = start_simulator(graph_config(latency=0.005))
    try:
        yield sim
    finally:
        sim.stop()


def _stats(sim: SimProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.base_url}/_sim/stats", timeout=10) as response:  # noqa: S310 - the local simulator
        stats: dict[str, Any] = json.load(response)
        return stats


def graph_config_for(graph: SyntheticGraph) -> SimConfig:
    """A simulator serving ``graph``."""
    return SimConfig(users=graph.users, seed=7, mean_friends=graph.mean_friends, latency=0.0)


@pytest.mark.parametrize("source", ["mastodon", "x-api"])
async def test_handles_are_looked_up_once_across_a_kill_and_a_resume(
    source: str, tmp_path: Path, own_sim: SimProcess, graph: SyntheticGraph
) -> None:
    users_csv = tmp_path / "users.csv"
    rows = write_users_csv(graph, users_csv, source, handles=True)
    db = tmp_path / "store.db"
    store = ["--store", store_url(db)]
    code, run = await run_cli(["users", "import", str(users_csv), *store])
    assert code == 0, run.tail()
    code, run = await run_cli(["partitions", "plan", "--count", "1", *store])
    assert code == 0, run.tail()
    args = ["run", *store, "--partition", "1", "--source", source]
    args += ["--base-url", own_sim.base_url, "--concurrency", "8", "--batch-size", "5"]

    # Killed once collecting has begun and saved a chunk: the handles of the users fed
    # so far were looked up, their ids saved; the rest are looked up by the next run.
    run = await start_cli(args)
    await run.wait_event("lookup.page")
    await run.wait_event("writer.flush")
    kill_now(run)
    assert await run.wait() == -9
    assert integrity(db) == "ok"
    code, last = await run_cli(args)
    assert code == 0, last.tail()

    accounts = list(graph.accounts())
    users = [import_user(source, graph, a, handles=True) for a in accounts]
    src = MastodonSource() if source == "mastodon" else XApiSource()
    asked = {
        (u.screen_name.rsplit("/@", 1)[-1].removeprefix("@").partition("@")[0]).lower()
        for u in users
        if src.check_user(u) is None
    }
    looked_up = _stats(own_sim)["looked_up"]
    assert set(looked_up) == asked
    assert set(looked_up.values()) == {1}, "a handle was looked up twice"

    saved = results(db)
    assert len(saved) == rows == len(accounts)
    for account, user in zip(accounts, users, strict=True):
        status, names, ids = api_truth(source, graph, account, handles=True)
        row = saved[user.user_id]
        assert row["status"] == status.value, (user, row["error"])
        assert row["friend_names"] == names, user
        assert row["friend_ids"] == ids, user


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A store URL as the CLI names it, and the environment its processes get."""
    if request.param == "sqlite":
        return store_url(tmp_path / "job.db"), clean_env()
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_GRPC_ENDPOINT=emulator.grpc_endpoint,
    )
    return f"bigquery://test-project/{dataset}", env


async def test_x_usernames_on_each_store_across_a_partial_and_a_second_run(
    tmp_path: Path, job_store: tuple[str, dict[str, str]]
) -> None:
    graph = SyntheticGraph(60, seed=7, mean_friends=60.0)
    url, env = job_store
    small = start_simulator(graph_config_for(graph))
    try:
        users_csv = tmp_path / "users.csv"
        write_users_csv(graph, users_csv, "x-api", handles=True)
        store = ["--store", url]
        for args in (["users", "import", str(users_csv)], ["partitions", "plan", "--count", "1"]):
            code, run = await run_cli([*args, *store], env=env)
            assert code == 0, run.tail()
        args = ["run", *store, "--partition", "1", "--source", "x-api"]
        args += ["--base-url", small.base_url, "--concurrency", "4"]
        # A first run stopped after 30 users, then a second one finishing the job.
        code, run = await run_cli([*args, "--users-limit", "30"], env=env)
        assert code == 0, run.tail()
        code, run = await run_cli(args, env=env)
        assert code == 0, run.tail()
        looked_up = _stats(small)["looked_up"]
        assert set(looked_up.values()) == {1}, "a username was looked up twice"
        exported = tmp_path / "friends.jsonl"
        code, run = await run_cli(
            ["export", *store, "--format", "jsonl", "--output", str(exported)], env=env
        )
        assert code == 0, run.tail()
        rows = {
            row["user_id"]: row
            for row in map(json.loads, exported.read_text(encoding="utf-8").splitlines())
        }
        accounts = list(graph.accounts())
        assert len(rows) == len(accounts)
        for account in accounts:
            status, names, _ids = api_truth("x-api", graph, account, handles=True)
            row = rows[account.screen_name]
            assert row["status"] == status.value, row["error"]
            assert row["friend_names"] == names
    finally:
        small.stop()
