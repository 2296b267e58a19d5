"""The lease and unplaced users as users meet them: CLI processes, the real simulator, a
real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from friendscrape.models import User
from friendscrape.simulator import SyntheticGraph
from friendscrape.stores.planning import sort_key
from friendscrape.stores.sqlite import SqliteStore
from reliability.harness import (
    SimProcess,
    assert_partition_matches_truth,
    clean_env,
    graph_config,
    kill_now,
    results,
    run_args,
    run_cli,
    seed_store,
    start_cli,
    start_simulator,
    store_url,
    wait_rows,
)

pytestmark = pytest.mark.slow

# A short lease so heartbeats run many times within the test.
LEASE_ENV = {"FRIENDSCRAPE_LEASE_TTL": "3", "FRIENDSCRAPE_LEASE_HEARTBEAT": "0.5"}


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimProcess]:
    """The suite's graph, slow enough that a run is still collecting when a second starts."""
    sim = start_simulator(graph_config(latency=0.05))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def graph() -> SyntheticGraph:
    return graph_config().make_graph()


async def test_second_run_of_a_held_partition_exits_6_then_takes_over_after_kill(
    tmp_path: Path, slow_sim: SimProcess, graph: SyntheticGraph
) -> None:
    db = tmp_path / "store.db"
    await seed_store(db, graph, 3)
    env = clean_env(**LEASE_ENV)

    first = await start_cli(run_args(db, slow_sim, 2, concurrency=2), env=env)
    taken = await first.wait_event("lease.taken")
    await wait_rows(db, 3, run=first)

    code, second = await run_cli(run_args(db, slow_sim, 2), env=env, timeout=30)
    assert code == 6, second.tail()
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert taken["run_id"] in lines[0]
    assert f"pid {first.pid}" in lines[0]
    assert "expires in" in lines[0]
    assert first.process.returncode is None, "the holder must keep running"

    kill_now(first)
    assert await first.wait() == -9

    code, third = await run_cli(run_args(db, slow_sim, 2), env=env, timeout=90)
    assert code == 0, third.tail()
    assert third.named("lease.taken")
    assert third.named("lease.released")
    assert third.named("lease.heartbeat_failed") == []
    # Every user of the partition exactly once (results() fails on a second row).
    assert_partition_matches_truth(db, 2, graph)


def _csv(path: Path, users: list[User]) -> Path:
    lines = ["user_id,screen_name,following_count"]
    lines += [f"{u.user_id},{u.screen_name},{u.following_count}" for u in users]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "friendscrape.cli", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


async def test_users_imported_after_the_plan_are_reported_then_placed_and_collected(
    tmp_path: Path, slow_sim: SimProcess, graph: SyntheticGraph
) -> None:
    accounts = sorted(graph.accounts(), key=lambda a: sort_key(a.user_id))
    planned, late = accounts[:90], accounts[-6:]  # late ids sort past every planned one
    db = tmp_path / "store.db"
    store = SqliteStore(db)
    await store.open()
    await store.import_users([User(a.user_id, a.screen_name, a.following_count) for a in planned])
    await store.plan_partitions(3)
    await store.close()
    url = store_url(db)

    code, done = await run_cli(run_args(db, slow_sim, 3))
    assert code == 0, done.tail()
    imported = _cli(
        "users",
        "import",
        str(_csv(tmp_path / "late.csv", [User(a.user_id, a.screen_name, 1) for a in late])),
        "--store",
        url,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr

    status = _cli("status", "--json", "--store", url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["unplaced_users"] == 6
    assert document["total"]["remaining"] == 60 + 6  # partitions 1 and 2 not run, 6 late
    table = _cli("status", "--store", url, cwd=tmp_path)
    assert "6 users are outside the partition plan" in table.stdout

    code, warned = await run_cli(run_args(db, slow_sim, 3))
    assert code == 0, warned.tail()
    assert [e["users"] for e in warned.named("run.unplaced_users")] == [6]
    assert "6 users are outside the partition plan" in warned.stderr
    assert warned.named("run.started")[0]["pending"] == 0, "nothing new for partition 3 yet"

    placed = _cli("partitions", "place", "--store", url, cwd=tmp_path)
    assert placed.returncode == 0, placed.stderr
    assert "placed 6 users: 6 to partition 3" in placed.stdout

    code, last = await run_cli(run_args(db, slow_sim, 3))
    assert code == 0, last.tail()
    assert last.named("run.unplaced_users") == []
    assert last.named("run.started")[0]["pending"] == 6
    assert last.named("run.finished")[0]["users"] == 6
    rows = assert_partition_matches_truth(db, 3, graph, attempts_once=True)
    assert {a.user_id for a in late} <= set(rows)
    assert len(results(db)) == 36
