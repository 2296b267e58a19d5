"""Hostile pages give their user a clear failed status, never a crash, a hang or a short ok."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from friendscrape.simulator import HOSTILE_ACCOUNTS, SyntheticGraph
from reliability.harness import (
    SimProcess,
    assert_partition_matches_truth,
    graph_config,
    results,
    run_args,
    run_cli,
    seed_store,
    start_simulator,
)

pytestmark = pytest.mark.slow

# What each hostile account's error must say (lower-cased substrings).
EXPECTED_ERROR = {
    "zz_truncated": "truncated",
    "zz_cursor_loop": "loops back",
    "zz_empty_pages": "no users but links to a next page",
    "zz_huge_page": "cap",
    "zz_redirect": "another host",
    "zz_login_wall": "not a following page",
}


@pytest.fixture(scope="module")
def hostile_sim() -> Iterator[SimProcess]:
    sim = start_simulator(graph_config(latency=0, hostile=True))
    try:
        yield sim
    finally:
        sim.stop()


async def test_hostile_accounts_fail_with_a_clear_error(
    tmp_path: Path, hostile_sim: SimProcess
) -> None:
    graph: SyntheticGraph = hostile_sim.config.make_graph()
    db = tmp_path / "hostile.db"
    await seed_store(db, graph, 1)
    code, run = await run_cli(run_args(db, hostile_sim, 1, concurrency=50), timeout=60)
    assert code == 0, run.tail()
    assert run.named("partition.complete")
    assert "Traceback" not in run.stderr

    by_name = {row["screen_name"]: row for row in results(db).values()}
    for name in HOSTILE_ACCOUNTS:
        row = by_name[name]
        assert row["status"] == "failed", (name, row["status"], row["error"])
        assert EXPECTED_ERROR[name] in (row["error"] or "").lower(), (name, row["error"])
        assert row["friend_names"] == []
    assert_partition_matches_truth(db, 1, graph, attempts_once=True)
