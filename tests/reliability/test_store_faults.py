"""Store faults: a lock that passes is retried, at a save or as the store is opened; one
that stays, or a write that hangs, ends the process non-zero with an error event (or
one line) naming the cause.

The fault is real: this test process opens the same SQLite file and holds its write
lock (BEGIN IMMEDIATE), so the run's writes fail with "database is locked" or wait in
SQLite's busy handler, exactly as they would behind another writer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from reliability.harness import (
    SimProcess,
    assert_partition_matches_truth,
    clean_env,
    integrity,
    run_args,
    run_cli,
    saved_rows,
    start_cli,
    wait_rows,
    write_lock,
)

pytestmark = pytest.mark.slow

PARTITION = 3


async def test_lock_that_passes_is_retried_and_the_run_finishes(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    env = clean_env(FRIENDSCRAPE_WRITE_TIMEOUT="0.3", FRIENDSCRAPE_STORE_ATTEMPTS="50")
    run = await start_cli(run_args(db, clean_sim, PARTITION, "--batch-size", "5"), env=env)
    await wait_rows(db, 10, run=run)
    with write_lock(db):
        retry = await run.wait_event("writer.retry", timeout=20)
        assert "database is locked" in retry["error"]
        held = saved_rows(db)
        await run.wait_event("writer.retry", where=lambda e: e["attempt"] >= 2, timeout=20)
        assert saved_rows(db) == held, "nothing can be written while the lock is held"
    assert await run.wait(timeout=60) == 0, run.tail()
    assert not run.named("writer.failed")
    assert run.named("partition.complete")
    assert integrity(db) == "ok"
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)


async def test_lock_held_past_the_retry_budget_exits_non_zero(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    env = clean_env(FRIENDSCRAPE_WRITE_TIMEOUT="0.3", FRIENDSCRAPE_STORE_ATTEMPTS="3")
    run = await start_cli(run_args(db, clean_sim, PARTITION, "--stall-timeout", "60"), env=env)
    # Locked once the run holds its partition's lease (taking it is a write too): from
    # then on every write of the run meets the lock.
    await run.wait_event("run.started")
    with write_lock(db):
        held = saved_rows(db)
        code = await run.wait(timeout=30)
    assert code == 3, run.tail()
    failed = run.named("writer.failed")
    assert failed, run.tail()
    assert "database is locked" in failed[0]["error"]
    aborted = run.named("run.aborted")
    assert aborted
    assert aborted[0]["cause"] == "WriterFailedError"
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "database is locked" in lines[0]
    assert "Traceback" not in run.stderr
    assert saved_rows(db) == held

    # Restarted once the lock is gone, the partition completes.
    code, again = await run_cli(run_args(db, clean_sim, PARTITION))
    assert code == 0, again.tail()
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)


async def test_hung_write_trips_the_watchdog(db: Path, clean_sim: SimProcess) -> None:
    # Each write waits 5 s in SQLite's busy handler, then is retried for a minute: from
    # the pipeline's side the store hangs. The watchdog must end it after --stall-timeout.
    env = clean_env(
        FRIENDSCRAPE_WRITE_TIMEOUT="30",
        FRIENDSCRAPE_STORE_ATTEMPTS="100",
        FRIENDSCRAPE_STORE_RETRY_DEADLINE="600",
    )
    args = run_args(db, clean_sim, PARTITION, "--stall-timeout", "1.5", "--batch-size", "5")
    run = await start_cli(args, env=env)
    await wait_rows(db, 5, run=run)
    with write_lock(db):
        code = await run.wait(timeout=20)
    assert code == 3, run.tail()
    stalled = run.named("watchdog.stalled")
    assert stalled, run.tail()
    assert stalled[0]["seconds_without_write"] >= 1.5
    assert stalled[0]["cause"]
    assert run.named("run.aborted")[0]["cause"] == "StalledError"
    assert not run.named("run.finished")
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "no successful write" in lines[0]
    assert integrity(db) == "ok"


async def test_a_store_locked_as_the_run_opens_it_is_waited_for(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    """Opening to write takes the write lock for a moment: another process holding it
    longer (an import, a stopped worker) is retried as the store is opened, not an end."""
    env = clean_env(FRIENDSCRAPE_WRITE_TIMEOUT="0.3", FRIENDSCRAPE_STORE_ATTEMPTS="50")
    with write_lock(db):
        held = saved_rows(db)
        run = await start_cli(run_args(db, clean_sim, PARTITION), env=env)
        retry = await run.wait_event("store.retry", where=lambda e: e["what"] == "open", timeout=30)
        assert "database is locked" in retry["error"], retry
        assert not run.named("run.started"), run.tail()
        assert saved_rows(db) == held
    assert await run.wait(timeout=60) == 0, run.tail()
    assert run.named("partition.complete"), run.tail()
    assert "Traceback" not in run.stderr
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)


async def test_a_store_locked_through_every_open_attempt_is_one_line_and_exit_2(
    db: Path, clean_sim: SimProcess
) -> None:
    env = clean_env(FRIENDSCRAPE_WRITE_TIMEOUT="0.3", FRIENDSCRAPE_STORE_ATTEMPTS="3")
    with write_lock(db):
        held = saved_rows(db)
        run = await start_cli(run_args(db, clean_sim, PARTITION), env=env)
        code = await run.wait(timeout=60)
    assert code == 2, run.tail()
    retries = [e for e in run.named("store.retry") if e["what"] == "open"]
    assert [e["attempt"] for e in retries] == [1, 2], run.tail()
    assert not run.named("run.started"), run.tail()
    lines = [line for line in run.stderr.strip().splitlines() if line.startswith("friendscrape:")]
    said = (
        f"friendscrape: error: cannot open SQLite store {str(db)!r}: database is locked "
        "(another process is writing to it)"
    )
    assert lines == [said], run.stderr
    assert "Traceback" not in run.stderr
    assert saved_rows(db) == held
    assert integrity(db) == "ok"
