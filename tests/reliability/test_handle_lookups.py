"""Users files of handles: each handle is looked up once in all, across a kill -9 and a
resume, and every user ends with the simulator's truth (processes, a real SQLite file)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from friendscrape.simulator import SyntheticGraph
from friendscrape.simulator.formats import api_truth, import_user, write_users_csv
from friendscrape.sources.mastodon import MastodonSource
from friendscrape.sources.x_api import XApiSource
from reliability.harness import (
    SimProcess,
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

    # Killed once collecting has begun and saved a chunk: every handle was looked up.
    run = await start_cli(args)
    await run.wait_event("lookup.finished")
    await run.wait_event("writer.flush")
    kill_now(run)
    assert await run.wait() == -9
    assert integrity(db) == "ok"
    code, last = await run_cli(args)
    assert code == 0, last.tail()
    assert not last.named("lookup.finished"), "the resumed run looked handles up again"

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
        assert json.loads(row["friend_ids"]) == ids, user
