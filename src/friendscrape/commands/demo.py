"""`friendscrape demo`: a whole synthetic job against the in-process simulator, summarised.

Starts the simulator on a free port, fills a fresh demo store with its users, plans the
partitions, runs every partition at once in this event loop (as a fleet of workers would
run side by side), checks each list against the simulator's truth, and returns a summary
for the CLI to print.
``source`` picks the format the simulator is read in; users are imported the way that
source names accounts (screen names, numeric ids, Bluesky handles, ``ID@instance``) and
the truth is compared in the same terms (names and, where the source gives them, ids).

The simulator is imported only when the demo runs: only demo, bench and simulate load it.
Its options and the defaults they state are ``demo_options``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from friendscrape.commands.demo_options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LATENCY,
    DEFAULT_SOURCE,
    DEFAULT_USERS,
    DEMO_MEAN_FRIENDS,
    DEMO_STORE,
)
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.core.assemble import build_run, lease_config
from friendscrape.core.counters import RunCounters
from friendscrape.core.pipeline import PartitionRun, RunSummary
from friendscrape.core.samples import SampleRecorder, Upstream, sampling
from friendscrape.errors import UsageError
from friendscrape.models import Status
from friendscrape.platforms import SOURCE_NAMES
from friendscrape.stores import opened_store
from friendscrape.stores.base import Store

if TYPE_CHECKING:
    from friendscrape.simulator import RunningSimulator
    from friendscrape.simulator.graph import SyntheticGraph

# What the demo's first line calls each source's pages.
SOURCE_LABELS = {
    "bluesky": "Bluesky's public API",
    "x-api": "X API v2",
    "mastodon": "Mastodon's API",
    "twitter-mobile": "the legacy mobile site's 2020 design",
}
# Why the partitions' users/min do not add up to the ``all`` row's.
RATES_NOTE = (
    "users/min: each partition's over its own run time, all's over the whole job's wall time;",
    "the partitions ran side by side on this machine and did not all end together, so theirs",
    "add up to more than all's.",
)


def _fresh_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo collected, how long collecting took (wall seconds, every partition
    together), and how many lists differ from the truth."""

    summaries: Sequence[RunSummary]
    seconds: float
    mismatches: int

    @property
    def exit_code(self) -> int:
        """1 when a list differs from the simulator's truth, else 0."""
        return 1 if self.mismatches else 0


def _quiet(_text: str) -> None:
    """Progress lines go nowhere unless the caller shows them."""


async def run_demo(
    settings: Settings,
    *,
    users: int | None,
    partitions: int,
    latency: float | None,
    concurrency: int | None,
    source: str = DEFAULT_SOURCE,
    say: Callable[[str], None] = _quiet,
) -> DemoResult:
    """Run the demo (``say``: its progress lines, for people); ``render`` the result."""
    from friendscrape.simulator import SimConfig, run_simulator  # noqa: PLC0415 - see top
    from friendscrape.simulator.formats import import_user  # noqa: PLC0415

    if source not in SOURCE_NAMES:
        msg = f"unknown source {source!r}: choose one of {', '.join(SOURCE_NAMES)}"
        raise UsageError(msg)
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
                "source": source,
                "concurrency": concurrency or DEFAULT_CONCURRENCY,
                "progress_interval": 3600.0,
            }
        )
        async with opened_store(store_config(run_settings), create=True) as store:
            if await store.user_count():
                msg = f"the demo needs an empty store; {store_url} already has users"
                raise UsageError(msg)
            accounts = [import_user(source, sim.graph, a) for a in sim.graph.accounts()]
            # As `users import --source` does: the demo's store is a job of its source.
            await store.record_platform(source)
            await store.import_users(accounts)
            plan = await store.plan_partitions(partitions)
            say(
                f"simulator at {sim.base_url} serving {SOURCE_LABELS[source]} ({source}): "
                f"{len(accounts)} users in {len(plan)} partitions, {config.latency:g}s per "
                f"page; collecting into {store_url}"
            )
            # Each partition paces itself, as each worker of a fleet would.
            runs = [build_run(run_settings, store, p.number) for p in plan]
            started = time.monotonic()
            counters = [r.stats for r in runs]
            reporter = asyncio.create_task(_report(counters, len(accounts), started, say))
            try:
                summaries = await asyncio.gather(
                    *(
                        _sampled(r, store, p.number, run_settings)
                        for r, p in zip(runs, plan, strict=True)
                    )
                )
            finally:
                reporter.cancel()
            seconds = time.monotonic() - started  # collecting only, not the check below
            mismatches = await _check_truth(store, sim, source)
        return DemoResult(summaries, seconds, mismatches)


async def _sampled(
    run: PartitionRun, store: Store, partition: int, settings: Settings
) -> RunSummary:
    """Run one partition and record its samples as `run` does, so the demo's store is a
    job `status` and `report` read like any other (its runs seen, and flagged as measured
    against a local simulator)."""
    recorder = SampleRecorder(
        store,
        run.sample_figures,
        run_id=uuid.uuid4().hex[:12],
        partition=partition,
        source=settings.source or DEFAULT_SOURCE,
        upstream=Upstream.of(settings.base_url),
    )
    async with sampling(recorder, every=lease_config(settings).heartbeat):
        return await run.run()


async def _report(
    counters: Sequence[RunCounters], total: int, started: float, say: Callable[[str], None]
) -> None:
    while True:
        await asyncio.sleep(5)
        done = sum(c.users_done for c in counters)
        minutes = (time.monotonic() - started) / 60
        say(f"  {done}/{total} users collected, {done / minutes:,.0f} users/min")


async def _check_truth(store: Store, sim: RunningSimulator, source: str) -> int:
    """Users whose stored status or list differs from the simulator's ground truth."""
    if source != "twitter-mobile":
        return await _check_json_truth(store, sim.graph, source)
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


async def _check_json_truth(store: Store, graph: SyntheticGraph, source: str) -> int:
    """Like ``_check_truth`` for the API sources: accounts found by user id, and friend
    ids checked beside names."""
    from friendscrape.simulator.formats import api_truth  # noqa: PLC0415 - see top

    mismatches = 0
    async for result in store.results():
        account = graph.account_by_id(result.user_id)
        if account is None:
            mismatches += 1
            continue
        status, names, ids = api_truth(source, graph, account)
        if status is not result.status:
            mismatches += 1
        elif status is Status.OK:
            count = len(result.friend_names)
            if list(result.friend_names) != names[:count] or list(result.friend_ids) != ids[:count]:
                mismatches += 1
    return mismatches


def render(result: DemoResult) -> str:
    """The summary table, one row per partition and one for all, a note on how the rates
    add up, then the verdict."""
    statuses = [s.value for s in Status]
    names = ["part", "users", *statuses, "avg friends", "users/min"]
    widths = [max(len(name), 6) for name in names]  # every header whole

    def row(cells: Sequence[object]) -> str:
        return " ".join(f"{cell!s:>{w}}" for cell, w in zip(cells, widths, strict=True))

    lines = [row(names)]
    total: Counter[str] = Counter()
    for s in sorted(result.summaries, key=lambda s: s.partition):
        total.update(s.statuses)
        ok = s.statuses.get("ok", 0)
        avg = s.friends / ok if ok else 0.0
        counts = [s.statuses.get(status, 0) for status in statuses]
        lines.append(
            row([s.partition, s.users, *counts, f"{avg:.1f}", f"{s.users_per_minute:.0f}"])
        )
    users = sum(s.users for s in result.summaries)
    friends = sum(s.friends for s in result.summaries)
    all_rate = users * 60 / max(result.seconds, 1e-9)
    counts = [total.get(status, 0) for status in statuses]
    avg_all = friends / max(total.get("ok", 0), 1)
    lines.append(row(["all", users, *counts, f"{avg_all:.1f}", f"{all_rate:.0f}"]))
    if len(result.summaries) > 1:
        lines.extend(RATES_NOTE)
    mismatches = result.mismatches
    verdict = "all lists match" if not mismatches else f"{mismatches} users differ from"
    lines.append(f"{users} users in {result.seconds:.1f}s; {verdict} the simulator's truth.")
    return "\n".join(lines)
