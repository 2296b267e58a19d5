"""SIGTERM and SIGINT stop intake, flush every finished result and exit 128 + the signal
with users left pending (a Job or task then runs it again); a second exits now."""

from __future__ import annotations

import signal
import time
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
)

pytestmark = pytest.mark.slow

PARTITION = 1
USERS = 200
HEROKU_BUDGET = 25.0  # Heroku sends SIGKILL 30 s after SIGTERM; we must be out well before
# A quarter of the sticky simulator's pages never answer, and with this timeout a hung
# request holds its user for 5 s, far past the 1 s grace: when the signal comes, some
# users are surely mid-list. (Longer would only slow the test: the limiter sends one
# request to a new host until the first answer, and that one may be a hung page.)
# Adaptive pacing would shrink the host's window onto the hung requests; these tests
# are about signals, so the window stays at --concurrency.
PATIENT = clean_env(FRIENDSCRAPE_REQUEST_TIMEOUT="5", FRIENDSCRAPE_ADAPTIVE="false")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_flushes_finished_users_and_abandoned_ones_come_back(
    sig: signal.Signals,
    db: Path,
    sticky_sim: SimProcess,
    clean_sim: SimProcess,
    graph: SyntheticGraph,
) -> None:
    args = run_args(db, sticky_sim, PARTITION, "--grace-period", "1", concurrency=60)
    run = await start_cli(args, env=PATIENT)
    await wait_rows(db, 10, run=run)
    signalled = time.monotonic()
    run.send(sig)
    code = await run.wait(timeout=HEROKU_BUDGET)
    # Not a success: users are left, so a Kubernetes Job or Cloud Run task runs it again.
    assert code == 128 + sig.value, run.tail()
    assert time.monotonic() - signalled < HEROKU_BUDGET
    said = (
        f"friendscrape: stopped by {sig.name}; what it finished is saved, and the users "
        "left stay pending: run it again to collect them"
    )
    assert run.stderr.strip().splitlines() == [said]

    assert [e["signal"] for e in run.named("run.signal")] == [sig.name]
    assert run.named("run.draining"), run.tail()
    abandoned = run.named("run.abandoned")
    assert abandoned, "users stuck on a hung page must be abandoned after the grace period"
    assert abandoned[0]["users"] > 0
    finished = run.named("run.finished")[0]
    assert finished["stopped"] is True
    # Every user that finished before the exit was saved, and nothing else was.
    assert finished["users"] == finished["saved"] == saved_rows(db)
    assert finished["saved"] < USERS
    assert not run.named("partition.complete")
    assert integrity(db) == "ok"

    # The next run, against a healthy upstream, collects the rest, abandoned users too.
    code, last = await run_cli(run_args(db, clean_sim, PARTITION))
    assert code == 0, last.tail()
    assert last.named("partition.complete")
    assert last.named("run.finished")[0]["users"] == USERS - finished["saved"]
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)


async def test_second_signal_exits_at_once_and_the_store_stays_whole(
    db: Path, sticky_sim: SimProcess, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    # A long grace period: only the second signal can end this run quickly.
    args = run_args(db, sticky_sim, PARTITION, "--grace-period", "120", "--batch-size", "1")
    run = await start_cli(args, env=PATIENT)
    await wait_rows(db, 5, run=run)
    run.send(signal.SIGTERM)
    await run.wait_event("run.draining", timeout=10)
    second = time.monotonic()
    run.send(signal.SIGTERM)
    code = await run.wait(timeout=10)
    assert code == 128 + signal.SIGTERM, run.tail()
    assert time.monotonic() - second < 5
    assert [e["signal"] for e in run.named("run.signal")] == ["SIGTERM", "SIGTERM"]
    assert not run.named("run.finished")
    assert integrity(db) == "ok"

    code, last = await run_cli(run_args(db, clean_sim, PARTITION))
    assert code == 0, last.tail()
    assert integrity(db) == "ok"
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)


async def test_a_worker_idling_after_its_partition_exits_0_on_sigterm(
    db: Path, clean_sim: SimProcess, graph: SyntheticGraph
) -> None:
    # Heroku's daily restart of a worker whose work is done: nothing is left, so success.
    args = run_args(db, clean_sim, PARTITION, "--when-done", "idle")
    run = await start_cli(args)
    await run.wait_event("worker.idle", timeout=60)
    run.send(signal.SIGTERM)
    code = await run.wait(timeout=HEROKU_BUDGET)
    assert code == 0, run.tail()
    assert run.stderr == ""
    assert run.named("partition.complete")
    assert_partition_matches_truth(db, PARTITION, graph, attempts_once=True)
