"""`friendscrape demo`: a whole synthetic job against the in-process simulator, summarised.

Starts the simulator on a free port, fills a fresh demo store with its users, plans the
partitions, runs every partition at once in this event loop (as a fleet of workers would
run side by side), checks each list against the simulator's truth, and prints a summary.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from friendscrape.app import opened_store
from friendscrape.config import Settings
from friendscrape.errors import UsageError
from friendscrape.models import Status, User
from friendscrape.pipeline import PartitionRun, RunSummary
from friendscrape.simulator import RunningSimulator, SimConfig, run_simulator
from friendscrape.sources import make_source
from friendscrape.stats import RunStats
from friendscrape.stores.base import Store

DEMO_STORE = "sqlite:///friendscrape-demo.db"
DEFAULT_USERS = 3000
# Shorter lists and pages than the real site, so the whole job fits in about a minute
# on a small machine; `friendscrape bench` and benchmarks/ use the real figures.
DEFAULT_LATENCY = 0.05
DEMO_MEAN_FRIENDS = 150.0
DEFAULT_CONCURRENCY = 40


def _fresh_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def main(
    settings: Settings,
    *,
    users: int | None,
    partitions: int,
    latency: float | None,
    concurrency: int | None,
) -> int:
    """Run the demo; returns the exit code (1 when a list differs from the truth)."""
    store_url = settings.store
    if "store" not in settings.model_fields_set:
        store_url = DEMO_STORE
        _fresh_sqlite(store_url)
    config = SimConfig(
        users=users or DEFAULT_USERS,
        latency=DEFAULT_LATENCY if latency is None else latency,
        mean_friends=DEMO_MEAN_FRIENDS,
    )
    async with run_simulator(config) as sim:
        run_settings = settings.model_copy(
            update={
                "store": store_url,
                "base_url": sim.base_url,
                "source": "twitter-mobile",
                "concurrency": concurrency or DEFAULT_CONCURRENCY,
                "progress_interval": 3600.0,
            }
        )
        async with opened_store(run_settings) as store:
            if await store.user_count():
                msg = f"the demo needs an empty store; {store_url} already has users"
                raise UsageError(msg)
            accounts = [
                User(a.user_id, a.screen_name, a.following_count) for a in sim.graph.accounts()
            ]
            await store.import_users(accounts)
            plan = await store.plan_partitions(partitions)
            _say(
                f"simulator at {sim.base_url}: {len(accounts)} users in {len(plan)} "
                f"partitions, {config.latency:g}s per page; collecting into {store_url}"
            )
            stats = {p.number: RunStats() for p in plan}
            runs = [
                PartitionRun(
                    run_settings,
                    store,
                    make_source(run_settings),
                    partition=p.number,
                    stats=stats[p.number],
                )
                for p in plan
            ]
            started = time.monotonic()
            reporter = asyncio.create_task(_report(stats, len(accounts), started))
            try:
                summaries = await asyncio.gather(*(r.run() for r in runs))
            finally:
                reporter.cancel()
            mismatches = await _check_truth(store, sim)
        _print_summary(summaries, time.monotonic() - started, mismatches)
    return 1 if mismatches else 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _report(stats: dict[int, RunStats], total: int, started: float) -> None:
    while True:
        await asyncio.sleep(5)
        done = sum(s.users_done for s in stats.values())
        minutes = (time.monotonic() - started) / 60
        _say(f"  {done}/{total} users collected, {done / minutes:,.0f} users/min")


async def _check_truth(store: Store, sim: RunningSimulator) -> int:
    """Users whose stored status or list differs from the simulator's ground truth."""
    mismatches = 0
    async for result in store.results():
        expected = sim.graph.expected(result.screen_name)
        if expected["status"] != result.status.value:
            mismatches += 1
        elif result.status is Status.OK:
            truth = expected["friends"][: len(result.friend_names)]
            if list(result.friend_names) != truth:
                mismatches += 1
    return mismatches


def _print_summary(summaries: list[RunSummary], seconds: float, mismatches: int) -> None:
    others = [s.value for s in Status if s is not Status.OK]
    header = f"{'part':>4} {'users':>6} {'ok':>6} " + " ".join(f"{o[:9]:>9}" for o in others)
    print(header + f" {'avg friends':>11} {'users/min':>9}")
    total: Counter[str] = Counter()
    for s in sorted(summaries, key=lambda s: s.partition):
        total.update(s.statuses)
        ok = s.statuses.get("ok", 0)
        avg = s.friends / ok if ok else 0.0
        cells = " ".join(f"{s.statuses.get(o, 0):>9}" for o in others)
        print(
            f"{s.partition:>4} {s.users:>6} {ok:>6} {cells} {avg:>11.1f} {s.users_per_minute:>9.0f}"
        )
    users = sum(s.users for s in summaries)
    ok = total.get("ok", 0)
    friends = sum(s.friends for s in summaries)
    cells = " ".join(f"{total.get(o, 0):>9}" for o in others)
    print(
        f"{'all':>4} {users:>6} {ok:>6} {cells} {friends / max(ok, 1):>11.1f} "
        f"{users * 60 / max(seconds, 1e-9):>9.0f}"
    )
    verdict = "all lists match" if not mismatches else f"{mismatches} users differ from"
    print(f"{users} users in {seconds:.1f}s; {verdict} the simulator's truth.")
