"""What the report draws, read from the store as aggregates: one query per table or chart.

Nothing here reads one row per user: the status figures (``gather_status``), users
finished per partition and time bucket, the friend-count histogram, the lists' and the
failures' counts and the run samples are each counted by the store, so a job of millions
of users reports from a 512 MB worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from friendscrape.commands.estimate.model import Tier, load_tiers
from friendscrape.commands.progress.figures import StatusReport, gather_status
from friendscrape.errors import UsageError
from friendscrape.stores.base import ListCounts, ReadStore, SampleBucket

PROGRESS_POINTS = 300
"""Time buckets across the progress chart: its lines never carry more points."""

MAX_BARS = 48
"""Bars of the per-interval charts at most: the interval grows with the job's span."""

_BAR_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)

DEFAULT_TIER = "standard-1x"
"""The worker size priced when none is named (docs/deploying.md's Heroku setup)."""


def bar_interval(span: float) -> int:
    """The round interval (seconds) giving at most ``MAX_BARS`` bars over ``span``."""
    return next((s for s in _BAR_STEPS if span / s <= MAX_BARS), _BAR_STEPS[-1])


@dataclass(frozen=True, slots=True)
class Cost:
    """What the workers cost so far: an estimate from their hours and a tier's list price.

    A worker is taken to run from its partition's first start to its last result (to now
    while it is still collecting); idle or restarted hours are not seen.
    """

    tier: str
    usd_per_hour: float
    worker_hours: float
    workers: int
    usd: float
    pool: bool


def cost_so_far(report: StatusReport, tier: Tier, hours_per_month: float) -> Cost:
    """Hours of every partition's worker at ``tier``'s price (an estimate)."""
    now = report.generated_at
    hours = 0.0
    workers = 0
    first: datetime | None = None
    last: datetime | None = None
    for p in report.partitions:
        if p.first_start is None or p.last_end is None:
            continue
        running = p.collecting
        end = now if running else p.last_end
        hours += max((end - p.first_start).total_seconds(), 0.0) / 3600
        workers += 1
        first = p.first_start if first is None else min(first, p.first_start)
        last = end if last is None else max(last, end)
    per_hour = tier.usd_per_month / hours_per_month
    pool = tier.billing == "pool"
    if pool and first is not None and last is not None:
        # A pool tier (Eco) bills its monthly price per 30 days started.
        days = (last - first).total_seconds() / 86400
        usd = tier.usd_per_month * max(math.ceil(days / 30), 1)
    else:
        usd = hours * per_hour
    return Cost(tier.name, per_hour, hours, workers, usd, pool)


def pick_tier(name: str, path: Path | None) -> tuple[Tier, float]:
    """The tier named ``name`` from the tiers file (the packaged Heroku table by default)."""
    tiers, hours = load_tiers(path)
    for tier in tiers:
        if tier.name == name:
            return tier, hours
    names = ", ".join(t.name for t in tiers)
    msg = f"--tier {name!r} is not in the tiers table; choose one of {names}"
    raise UsageError(msg)


@dataclass(frozen=True, slots=True)
class Figures:
    """Every figure the page shows, each counted in the store."""

    status: StatusReport
    progress: Sequence[tuple[int, int, int]]  # (partition, bucket number, users finished)
    progress_bucket: int
    bars: Sequence[tuple[int, int, int]]  # the same per bar interval
    bar_interval: int
    friends_width: int
    friends: Sequence[tuple[int, int]]  # (bin, ok users)
    lists: ListCounts
    failures: Sequence[tuple[str, int]]  # (error kind, failed users)
    samples: Sequence[SampleBucket]  # per bar interval and partition
    cost: Cost | None

    @property
    def collected(self) -> int:
        """Users with a result, whatever its status."""
        return self.status.total.collected


FAILURE_KINDS = 12
"""Kinds of error listed at most (the most frequent)."""


async def gather_figures(
    store: ReadStore, *, now: datetime, tier: Tier | None = None, hours_per_month: float = 720
) -> Figures:
    """Read the page's figures from an opened store: a few aggregate queries."""
    status = await gather_status(store, now=now)
    total = status.total
    span = 0.0
    if total.first_start is not None and total.last_end is not None:
        span = (total.last_end - total.first_start).total_seconds()
    bucket = max(math.ceil(span / PROGRESS_POINTS), 1)
    interval = bar_interval(span)
    width, friends = await store.friend_histogram(bins=20)
    return Figures(
        status=status,
        progress=await store.finished_counts(bucket=bucket),
        progress_bucket=bucket,
        bars=await store.finished_counts(bucket=interval),
        bar_interval=interval,
        friends_width=width,
        friends=friends,
        lists=await store.list_counts(),
        failures=await store.failure_kinds(limit=FAILURE_KINDS),
        samples=await store.sample_buckets(interval),
        cost=cost_so_far(status, tier, hours_per_month) if tier is not None else None,
    )
