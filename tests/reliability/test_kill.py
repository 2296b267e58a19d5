"""kill -9 at any moment loses nothing and duplicates nothing: the next run resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import (
    SimProcess,
    assert_partition_matches_truth,
    integrity,
    kill_now,
    run_args,
    run_cli,
    saved_rows,
    start_cli,
    wait_rows,
)

pytestmark = pytest.mark.slow

PARTITION = 2


async def test_killed_at_many_moments_then_resumed_matches_truth(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    # Batch size 1: the run is writing almost all the time, so the kills that follow a
    # row count land during a write (mid-transaction) as often as between writes.
    args = run_args(db, clean_sim, PARTITION, "--batch-size", "1")

    # 1. Killed as soon as the run has started collecting, before any write.
    run = await start_cli(args)
    await run.wait_event("run.started")
    kill_now(run)
    assert await run.wait() == -9

    # 2-4. Killed while rows are being written, at three depths.
    for threshold in (20, 70, 140):
        run = await start_cli(args)
        await wait_rows(db, threshold, run=run)
        kill_now(run)
        assert await run.wait() == -9
        assert integrity(db) == "ok"

    # 5. Killed right after a flush event, with a larger batch in the queue.
    run = await start_cli(run_args(db, clean_sim, PARTITION, "--batch-size", "7"))
    await run.wait_event("writer.flush")
    kill_now(run)
    assert await run.wait() == -9
    killed_with = saved_rows(db)
    assert 0 < killed_with < 200, "the kills must have left work for the last run"

    code, last = await run_cli(args)
    assert code == 0, last.tail()
    finished = last.named("run.finished")[0]
    assert finished["users"] == finished["saved"] == 200 - killed_with
    assert last.named("partition.complete")
    assert integrity(db) == "ok"
    # Every user collected once: a saved user is never fetched or written again.
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)
