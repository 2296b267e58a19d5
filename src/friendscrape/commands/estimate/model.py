"""The sizing model of `estimate`: worker tiers, memory-bound concurrency, one tier's plan.

- A worker's concurrency is bound by memory: ``base_mb + mb_per_user * concurrency`` must
  fit in ``headroom`` of the tier's memory (about 300 MB at concurrency 1000 by default),
  and never exceeds ``max_concurrency`` (the highest concurrency measured to scale).
- A worker's throughput grows in proportion to its concurrency, from the measured
  ``rate`` at ``rate_concurrency``: waiting on the upstream, not CPU, is what limits it.
- Workers do not slow each other down (one partition each, own IP); a job of N users on
  W workers takes N / (W x rate) days, unless the source's documented limits bound it
  (``limits``): a per-address limit caps each worker's rate, a token pool caps the
  whole fleet's, and workers beyond that cap would add cost, not speed.
- Cost is prorated per dyno-hour (price / hours_per_month); a "pool" tier (Eco) costs its
  monthly price per 30 days started and is only possible while the pool covers the hours.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from friendscrape.commands.estimate.limits import SourceBound
from friendscrape.errors import UsageError


@dataclass(frozen=True, slots=True)
class Tier:
    """One worker size: memory, list price, and how many may run at once."""

    name: str
    memory_mb: float
    usd_per_month: float
    max_workers: int
    billing: str = "prorated"
    pool_hours: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Model:
    """The assumptions of an estimate; every one is a command-line option."""

    rate: float  # users per day per worker, measured
    rate_concurrency: int  # the concurrency that rate was measured at
    max_concurrency: int = 1000
    base_mb: float = 60.0
    mb_per_user: float = 0.24
    headroom: float = 0.8
    hours_per_month: float = 720.0


@dataclass(frozen=True, slots=True)
class TierPlan:
    """One tier's figures for the job: the fewest workers that meet the deadline."""

    tier: str
    memory_mb: float
    concurrency: int
    users_per_day_per_worker: float  # within the source's per-worker limit
    workers: int | None  # None: cannot meet the deadline on this tier
    days: float  # with ``workers_run`` workers
    cost_usd: float | None  # None: not possible on this tier (pool too small)
    meets_deadline: bool
    within_budget: bool | None
    binds: str = "workers"  # what sets the pace: "workers", "source" (per worker), "fleet"
    workers_run: int = 1  # ``workers``, or the most that help when the deadline fails


def load_tiers(path: Path | None = None) -> tuple[list[Tier], float]:
    """Tiers and hours per month from ``path``, or the packaged Heroku table."""
    try:
        if path is None:
            text = resources.files("friendscrape").joinpath("data/tiers.json").read_text()
        else:
            text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
        tiers = [
            Tier(
                name=str(t["name"]),
                memory_mb=float(t["memory_mb"]),
                usd_per_month=float(t["usd_per_month"]),
                max_workers=int(t.get("max_workers", 100)),
                billing=str(t.get("billing", "prorated")),
                pool_hours=float(t["pool_hours"]) if t.get("pool_hours") is not None else None,
                note=str(t.get("note", "")),
            )
            for t in doc["tiers"]
        ]
        hours = float(doc.get("hours_per_month", 720))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"cannot read tiers from {path or 'the packaged table'}: {exc}"
        raise UsageError(msg) from None
    if not tiers:
        msg = "the tiers file lists no tiers"
        raise UsageError(msg)
    return tiers, hours


def concurrency_for(tier: Tier, model: Model) -> int:
    """The concurrency a worker of ``tier`` can hold in memory (at least 1)."""
    usable = tier.memory_mb * model.headroom - model.base_mb
    fits = math.floor(usable / model.mb_per_user) if usable > 0 else 1
    return max(1, min(fits, model.max_concurrency))


def _cost(tier: Tier, workers: int, days: float, model: Model) -> float | None:
    hours = workers * days * 24
    if tier.billing == "pool":
        months = max(math.ceil(days / 30), 1)
        if tier.pool_hours is not None and hours > tier.pool_hours * months:
            return None
        return tier.usd_per_month * months
    return hours * tier.usd_per_month / model.hours_per_month


@dataclass(frozen=True, slots=True)
class Pace:
    """A worker's users a day on a tier, and what caps it."""

    concurrency: int
    per_worker: float
    per_worker_binds: bool  # the source's per-worker limit, not concurrency, sets it
    fleet: float | None  # the whole fleet's cap (a token pool), None: none
    useful_workers: int  # beyond this many, workers add cost and no speed

    def throughput(self, workers: int) -> float:
        """Users a day of ``workers`` workers together."""
        total = workers * self.per_worker
        return total if self.fleet is None else min(total, self.fleet)

    def binds(self, workers: int) -> str:
        """What sets the pace of ``workers`` workers."""
        if self.fleet is not None and workers * self.per_worker >= self.fleet:
            return "fleet"
        return "source" if self.per_worker_binds else "workers"


def pace_of(tier: Tier, model: Model, bound: SourceBound | None) -> Pace:
    """How fast one worker of ``tier`` collects, within the source's limits."""
    concurrency = concurrency_for(tier, model)
    own = model.rate * concurrency / model.rate_concurrency
    per_worker, binds = own, False
    if bound is not None and bound.per_worker is not None and bound.per_worker < own:
        per_worker, binds = bound.per_worker, True
    fleet = bound.fleet if bound is not None else None
    useful = tier.max_workers
    if fleet is not None:
        useful = min(useful, max(math.ceil(fleet / per_worker), 1))
    return Pace(concurrency, per_worker, binds, fleet, useful)


def plan_workers(
    tier: Tier,
    users: int,
    workers: int,
    model: Model,
    bound: SourceBound | None,
    *,
    deadline_days: float,
    budget: float | None,
) -> TierPlan:
    """``workers`` workers of ``tier`` (any number, even over its limit) on the job."""
    pace = pace_of(tier, model, bound)
    days = users / pace.throughput(workers)
    cost = _cost(tier, workers, days, model)
    meets = days <= deadline_days * (1 + 1e-9) and workers <= tier.max_workers
    meets = meets and cost is not None
    within = None if budget is None or cost is None else cost <= budget
    return TierPlan(
        tier=tier.name,
        memory_mb=tier.memory_mb,
        concurrency=pace.concurrency,
        users_per_day_per_worker=pace.per_worker,
        workers=workers if meets else None,
        days=days,
        cost_usd=cost,
        meets_deadline=meets,
        within_budget=within,
        binds=pace.binds(workers),
        workers_run=workers,
    )


def plan_tier(
    tier: Tier,
    users: int,
    deadline_days: float,
    budget: float | None,
    model: Model,
    *,
    bound: SourceBound | None = None,
) -> TierPlan:
    """The fewest workers of ``tier`` finishing ``users`` within the deadline, and the cost;
    when none do, the most workers that still add speed."""
    pace = pace_of(tier, model, bound)
    needed = max(math.ceil(users / (pace.per_worker * deadline_days)), 1)
    workers = needed if needed <= pace.useful_workers else pace.useful_workers
    return plan_workers(
        tier, users, workers, model, bound, deadline_days=deadline_days, budget=budget
    )


def fastest_plan(
    tier: Tier, users: int, model: Model, bound: SourceBound | None, budget: float | None
) -> TierPlan:
    """``tier``'s quickest plan: as many workers as still add speed."""
    pace = pace_of(tier, model, bound)
    return plan_workers(
        tier, users, pace.useful_workers, model, bound, deadline_days=math.inf, budget=budget
    )
