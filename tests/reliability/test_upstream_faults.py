"""Upstream faults (500s, 429 with Retry-After, dropped and hung connections): the
partition completes, every user has one row, and failed users come back with --retry-failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import (
    SimProcess,
    assert_partition_matches_truth,
    clean_env,
    integrity,
    partition_users,
    results,
    run_args,
    run_cli,
    seed_store,
)

pytestmark = pytest.mark.slow

PARTITION = 1


async def test_faulty_upstream_completes_and_failed_users_are_retried(
    tmp_path: Path, faulty_sim: SimProcess, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    # 100 users: every 429 pauses the host for its Retry-After, so this run is slow by
    # design; a smaller partition keeps it to seconds.
    db = tmp_path / "faulty.db"
    await seed_store(db, graph, 6)
    # Two attempts per page: with about 18 % of requests faulty, some users run out of
    # retries, which is what this test needs to see.
    env = clean_env(FRIENDSCRAPE_FETCH_ATTEMPTS="2")
    code, run = await run_cli(run_args(db, faulty_sim, PARTITION, concurrency=50), env=env)
    assert code == 0, run.tail()
    assert run.named("partition.complete")

    users = partition_users(db, PARTITION)
    rows = results(db)
    assert {uid for uid, _ in users} <= rows.keys()
    failed = {uid: row for uid, row in rows.items() if row["status"] == "failed"}
    assert failed, "with two attempts some users must exhaust their retries"
    for row in failed.values():
        assert row["error"], "a failed user keeps its error"
        assert row["friend_names"] == []
        assert any(
            kind in row["error"]
            for kind in ("server_error", "rate_limited", "connection", "timeout")
        ), row["error"]
    kinds = {e["kind"] for e in run.named("fetch.retry")}
    assert {"server_error", "rate_limited", "connection", "timeout"} <= kinds
    # Users that did not fail are exactly the truth, despite the faults.
    for uid, name in users:
        if uid not in failed:
            truth = graph.expected(name)
            assert rows[uid]["status"] == truth["status"], name
            assert rows[uid]["friend_names"] == truth["friends"], name
    warned = {e["user_id"] for e in run.named("collect.failed")}
    assert warned == set(failed)

    # A plain rerun has nothing to do; --retry-failed collects exactly the failed users.
    code, again = await run_cli(run_args(db, clean_sim, PARTITION))
    assert code == 0, again.tail()
    assert again.named("run.started")[0]["pending"] == 0
    code, retried = await run_cli(run_args(db, clean_sim, PARTITION, "--retry-failed"))
    assert code == 0, retried.tail()
    assert retried.named("run.started")[0]["pending"] == len(failed)
    rows = assert_partition_matches_truth(db, PARTITION, graph)
    assert all(rows[uid]["attempts"] == 2 for uid in failed)
    assert integrity(db) == "ok"
