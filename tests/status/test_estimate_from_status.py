"""`estimate --from-status` on a store a real run filled: rates measured against the local
simulator are refused (or labelled with --allow-simulated), a store without run samples
is estimated with a note, and a real upstream's host is named. CLI processes throughout."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from friendscrape.simulator import SyntheticGraph
from friendscrape.stores.base import RunSample
from friendscrape.stores.sqlite import SqliteStore
from reliability.harness import (
    SimProcess,
    clean_env,
    graph_config,
    run_args,
    run_cli,
    seed_store,
    start_simulator,
    store_url,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = start_simulator(graph_config())
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory, sim: SimProcess) -> Path:
    """A store with partition 1 of 2 partly collected from the simulator by `run`."""
    db = tmp_path_factory.mktemp("job") / "store.db"

    async def fill() -> None:
        graph: SyntheticGraph = graph_config().make_graph()
        await seed_store(db, graph, 2)
        code, done = await run_cli(run_args(db, sim, 1, "--users-limit", "80"))
        assert code == 0, done.tail()

    asyncio.run(fill())
    return db


def _estimate(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "friendscrape.cli", "estimate", "--from-status"]
    return subprocess.run(
        [*command, "--store", store_url(db), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_simulator_rates_are_refused_in_one_line(collected: Path, sim: SimProcess) -> None:
    done = _estimate(collected)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("friendscrape: error: the measured rates come from a local ")
    host = sim.base_url.split("//", 1)[1].rstrip("/")
    assert f"partition 1 ran against {host}" in lines[-1]
    assert "--allow-simulated" in lines[-1]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_allowed_simulator_rates_are_labelled_and_never_zero_days(collected: Path) -> None:
    done = _estimate(collected, "--allow-simulated")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("warning: simulator figures, not a real rate")
    assert "0.00 days" not in done.stdout
    assert "$0.00" not in done.stdout
    doc = json.loads(_estimate(collected, "--allow-simulated", "--json").stdout)
    assert doc["notes"][0].startswith("warning: simulator figures")
    assert doc["users"] == 600 - 80  # the users left
    assert doc["source"]["source"] == "twitter-mobile"  # the source the run used


def test_a_store_without_run_samples_is_estimated_with_a_note(
    collected: Path, tmp_path: Path
) -> None:
    older = tmp_path / "older.db"
    shutil.copy(collected, older)
    with sqlite3.connect(older) as conn:
        conn.execute("DROP TABLE run_samples")  # as a store written before run samples
    done = _estimate(older)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(
        "note: the store has no run samples (it predates them), so the upstream"
    )


def test_a_real_upstream_is_named_and_its_source_limits_apply(
    collected: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real.db"
    shutil.copy(collected, real)
    with sqlite3.connect(real) as conn:
        conn.execute("DELETE FROM run_samples")
        # An x-api job throughout: its record, its results and (below) its run.
        conn.execute("UPDATE job SET value = 'x-api' WHERE key = 'platform'")
        conn.execute("UPDATE user_friends SET source = 'x-api'")

    async def sample() -> None:
        store = SqliteStore(real)
        await store.open()
        try:
            await store.record_sample(
                RunSample(
                    run_id="r1",
                    partition=1,
                    at=datetime.now(UTC),
                    source="x-api",
                    upstream_host="api.x.com",
                    simulated=False,
                    users_done=80,
                    pages=80,
                )
            )
        finally:
            await store.close()

    asyncio.run(sample())
    done = _estimate(real, "--tokens", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "rates measured against api.x.com"
    assert "source x-api" in done.stdout  # the job's platform, never a default
    assert "4 tokens x 15 requests/15 min" in done.stdout

    # Another platform's limits on this job's measured rates: refused, naming both.
    other = _estimate(real, "--source", "bluesky")
    assert other.returncode == 2
    assert other.stderr.strip() == (
        "friendscrape: error: this job's platform is x-api, not bluesky from --source or "
        "FRIENDSCRAPE_SOURCE: leave it out to estimate the job as measured"
    )


def test_an_estimate_given_no_source_applies_no_platform_s_limits() -> None:
    command = [sys.executable, "-m", "friendscrape.cli", "estimate"]
    done = subprocess.run(
        [*command, "--users", "1000", "--rate", "100"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "note: no source given (--source or FRIENDSCRAPE_SOURCE), so no platform's "
        "documented request limits bound this estimate"
    )
    assert "twitter-mobile" not in done.stdout
