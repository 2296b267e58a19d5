"""An upstream that is down or wrong ends the run (exit 5, one line) with its users left
pending, instead of saving a partition of failed or not_found rows and exiting 0."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import test_utils

from friendscrape.models import User
from friendscrape.simulator import SyntheticGraph
from friendscrape.stores.sqlite import SqliteStore
from reliability.harness import (
    SimProcess,
    clean_env,
    partition_users,
    results,
    run_args,
    run_cli,
    store_url,
)

PARTITION = 1
UPSTREAM_DOWN = 5


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


async def test_nothing_listening_at_the_base_url_exits_5_with_every_user_pending(
    db: Path,
) -> None:
    port = test_utils.unused_port()  # bound, then closed: nothing listens there
    args = [
        "run",
        "--store",
        store_url(db),
        "--partition",
        str(PARTITION),
        "--source",
        "twitter-mobile",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--concurrency",
        "20",
    ]
    started = time.monotonic()
    code, run = await run_cli(args, timeout=60)
    took = time.monotonic() - started
    assert code == UPSTREAM_DOWN, run.tail()
    assert took < 20, f"took {took:.1f}s to notice"
    line = _one_error_line(run.stderr)
    assert line.startswith("friendscrape: error: upstream down or wrong"), line
    assert f"cannot connect to 127.0.0.1:{port}" in line
    assert f"http://127.0.0.1:{port}/" in line
    # The 200 users of the partition are all still pending: none saved as failed.
    assert len(partition_users(db, PARTITION)) == 200
    assert results(db) == {}
    tripped = run.named("breaker.tripped")
    assert len(tripped) == 1
    assert tripped[0]["cause"] == "connect"


async def test_a_mistyped_path_on_a_real_server_exits_5_and_records_no_not_found(
    db: Path, clean_sim: SimProcess
) -> None:
    # The simulator answers a path it does not serve with a web server's plain 404.
    args = run_args(db, clean_sim, PARTITION, concurrency=20)
    args[args.index("--base-url") + 1] = f"{clean_sim.base_url}/typo"
    code, run = await run_cli(args, timeout=60)
    assert code == UPSTREAM_DOWN, run.tail()
    line = _one_error_line(run.stderr)
    assert "HTTP 404" in line
    assert f"{clean_sim.base_url}/typo/" in line
    rows = results(db)
    assert not [r for r in rows.values() if r["status"] == "not_found"]
    assert rows == {}


async def test_a_host_that_does_not_resolve_exits_5_even_for_a_small_partition(
    tmp_path: Path,
) -> None:
    # Five users, fewer than the breaker's 20: every user of the run failing alike
    # still trips it when the run ends. ``.invalid`` never resolves (RFC 6761).
    db = tmp_path / "small.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.import_users([User(str(n), f"user_{n}", 3) for n in range(1, 6)])
        await store.plan_partitions(1)
    finally:
        await store.close()
    args = ["run", "--store", store_url(db), "--partition", "1", "--source", "twitter-mobile"]
    args += ["--base-url", "http://friendscrape-test.invalid"]
    code, run = await run_cli(args, timeout=60)
    assert code == UPSTREAM_DOWN, run.tail()
    line = _one_error_line(run.stderr)
    assert "friendscrape-test.invalid does not resolve" in line
    assert results(db) == {}


async def test_the_default_mobile_site_gets_one_notice_that_it_was_shut_down(
    tmp_path: Path,
) -> None:
    # Names the site cannot have: the run sends no request, and still says it once.
    db = tmp_path / "legacy.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.import_users([User("1", "not-a-name", 0), User("2", "also bad", 0)])
        await store.plan_partitions(1)
    finally:
        await store.close()
    code, run = await run_cli(
        ["run", "--store", store_url(db), "--partition", "1", "--source", "twitter-mobile"]
    )
    assert code == 0, run.tail()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "shut down in December 2020" in lines[0]
    assert "--base-url" in lines[0]
    assert len(run.named("source.legacy_site")) == 1
    assert {r["status"] for r in results(db).values()} == {"invalid"}


async def test_a_run_with_ordinary_failures_does_not_trip(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    # A breaker of 2 on the real simulator: its not_found, protected and suspended users
    # are answers from an upstream that is up, so they never count.
    partition = next(
        number
        for number in (1, 2, 3)
        if any(
            graph.expected(name)["status"] == "not_found" for _, name in partition_users(db, number)
        )
    )
    env = clean_env(FRIENDSCRAPE_BREAKER_USERS="2")
    code, run = await run_cli(run_args(db, clean_sim, partition), env=env, timeout=60)
    assert code == 0, run.tail()
    assert not run.named("breaker.tripped")
    rows = results(db)
    assert len(rows) == 200
    statuses = {r["status"] for r in rows.values()}
    assert "not_found" in statuses, statuses
    for uid, name in partition_users(db, partition):
        assert rows[uid]["status"] == graph.expected(name)["status"], name
