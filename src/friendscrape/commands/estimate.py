"""How long a job takes and what it costs on each worker tier; the cheapest plan in time.

The model, printed with every estimate (docs/monitoring.md explains it):

- A worker's concurrency is bound by memory: ``base_mb + mb_per_user * concurrency`` must
  fit in ``headroom`` of the tier's memory (about 300 MB at concurrency 1000 by default),
  and never exceeds ``max_concurrency`` (the highest concurrency measured to scale).
- A worker's throughput grows in proportion to its concurrency, from the measured
  ``rate`` at ``rate_concurrency``: waiting on the upstream, not CPU, is what limits it.
- Workers do not slow each other down (one partition each, own IP, upstream not the
  bottleneck); a job of N users on W workers takes N / (W x rate) days.
- Cost is prorated per dyno-hour (price / hours_per_month); a "pool" tier (Eco) costs its
  monthly price per 30 days started and is only possible while the pool covers the hours.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from friendscrape.commands.status import StatusReport
from friendscrape.config import Settings
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
    users_per_day_per_worker: float
    workers: int | None  # None: cannot meet the deadline within max_workers
    days: float  # with ``workers`` (or max_workers when the deadline cannot be met)
    cost_usd: float | None  # None: not possible on this tier (pool too small)
    meets_deadline: bool
    within_budget: bool | None


@dataclass(frozen=True, slots=True)
class Estimate:
    """Every tier's plan and the cheapest that meets the deadline (and budget, if any)."""

    users: int
    deadline_days: float
    budget_usd: float | None
    model: Model
    plans: tuple[TierPlan, ...]
    best: TierPlan | None


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


def plan_tier(
    tier: Tier, users: int, deadline_days: float, budget: float | None, model: Model
) -> TierPlan:
    """The fewest workers of ``tier`` finishing ``users`` within the deadline, and the cost."""
    concurrency = concurrency_for(tier, model)
    per_worker = model.rate * concurrency / model.rate_concurrency
    needed = max(math.ceil(users / (per_worker * deadline_days)), 1)
    meets = needed <= tier.max_workers
    workers = needed if meets else tier.max_workers
    days = users / (per_worker * workers)
    cost = _cost(tier, workers, days, model)
    if cost is None:
        meets = False
    within = None if budget is None or cost is None else cost <= budget
    return TierPlan(
        tier=tier.name,
        memory_mb=tier.memory_mb,
        concurrency=concurrency,
        users_per_day_per_worker=per_worker,
        workers=workers if meets else None,
        days=days,
        cost_usd=cost,
        meets_deadline=meets,
        within_budget=within,
    )


def estimate(
    users: int,
    tiers: list[Tier],
    model: Model,
    *,
    deadline_days: float,
    budget: float | None = None,
) -> Estimate:
    """Plan every tier; ``best`` is the cheapest that meets the deadline and the budget."""
    if users < 1 or model.rate <= 0 or deadline_days <= 0 or model.rate_concurrency < 1:
        msg = "users, rate, rate concurrency and deadline must be positive"
        raise UsageError(msg)
    plans = tuple(plan_tier(t, users, deadline_days, budget, model) for t in tiers)
    fits = [
        p
        for p in plans
        if p.meets_deadline and p.cost_usd is not None and p.within_budget is not False
    ]
    best = min(fits, key=lambda p: (p.cost_usd or 0.0, p.days)) if fits else None
    return Estimate(users, deadline_days, budget, model, plans, best)


def rate_from_status(report: StatusReport) -> float | None:
    """Users per day per worker measured so far: the mean overall rate of the partitions."""
    rates = [p.per_day_overall for p in report.partitions if p.per_day_overall and p.collected]
    return sum(rates) / len(rates) if rates else None


def assumptions(model: Model) -> list[str]:
    """The model in words, printed with every estimate."""
    at_1000 = model.base_mb + model.mb_per_user * 1000
    return [
        (
            f"measured rate: {model.rate:,.0f} users/day per worker at concurrency "
            f"{model.rate_concurrency}"
        ),
        (
            "throughput grows in proportion to concurrency (the upstream's latency, not CPU, "
            "limits a worker); workers do not slow each other down"
        ),
        (
            f"memory: {model.base_mb:g} MB + {model.mb_per_user:g} MB per user in flight "
            f"({at_1000:,.0f} MB at concurrency 1000), within {model.headroom:.0%} of the "
            f"tier's memory; concurrency capped at {model.max_concurrency}"
        ),
        (
            f"cost prorated per dyno-hour ({model.hours_per_month:g} hours a month); "
            "a pool tier costs its monthly price per 30 days started"
        ),
    ]


def to_json(est: Estimate) -> dict[str, Any]:
    """The JSON form of `friendscrape estimate --json`."""
    return {
        "schema": 1,
        "users": est.users,
        "deadline_days": est.deadline_days,
        "budget_usd": est.budget_usd,
        "model": asdict(est.model),
        "assumptions": assumptions(est.model),
        "tiers": [asdict(p) for p in est.plans],
        "best": asdict(est.best) if est.best else None,
    }


def render(est: Estimate) -> str:
    """The people's form: one line per tier, the cheapest plan, the assumptions."""
    lines = [
        f"{est.users:,} users, deadline {est.deadline_days:g} days"
        + (f", budget ${est.budget_usd:,.0f}" if est.budget_usd is not None else ""),
        (
            f"{'tier':<14} {'memory':>8} {'conc.':>6} {'users/day/w':>11} {'workers':>7} "
            f"{'days':>7} {'cost $':>9}  verdict"
        ),
    ]
    for p in est.plans:
        workers = str(p.workers) if p.workers is not None else "-"
        cost = f"{p.cost_usd:,.2f}" if p.cost_usd is not None else "-"
        if not p.meets_deadline:
            verdict = (
                "too slow (at its worker limit)" if p.cost_usd is not None else "pool too small"
            )
        elif p.within_budget is False:
            verdict = "over budget"
        else:
            verdict = "ok"
        lines.append(
            f"{p.tier:<14} {p.memory_mb:>6,.0f}MB {p.concurrency:>6} "
            f"{p.users_per_day_per_worker:>11,.0f} {workers:>7} {p.days:>7.2f} {cost:>9}  {verdict}"
        )
    if est.best is not None:
        b = est.best
        lines.append(
            f"cheapest in time: {b.workers} x {b.tier} (concurrency {b.concurrency}), "
            f"{b.days:.2f} days, ${b.cost_usd or 0:,.2f}: plan {b.workers} partitions"
        )
    else:
        lines.append("no tier meets the deadline" + (" and budget" if est.budget_usd else ""))
    lines.append("assumptions:")
    lines.extend(f"  - {a}" for a in assumptions(est.model))
    return "\n".join(lines)


async def run_estimate(
    settings: Settings,
    *,
    users: int | None,
    rate: float | None,
    from_status: bool,
    tiers_path: Path | None,
    deadline_days: float,
    budget: float | None,
    rate_concurrency: int,
    max_concurrency: int,
    mb_per_user: float,
    base_mb: float,
) -> Estimate:
    """The `estimate` command's work; reads the store only with ``from_status``."""
    if from_status:
        from friendscrape.commands.status import read_status  # noqa: PLC0415

        report = await read_status(settings)
        measured = rate_from_status(report)
        if measured is None:
            msg = "the store has no results to measure a rate from yet: pass --rate"
            raise UsageError(msg)
        rate = measured
        users = users if users is not None else report.total.remaining
    if rate is None or users is None:
        msg = "give --users and --rate, or --from-status"
        raise UsageError(msg)
    tiers, hours = load_tiers(tiers_path)
    model = Model(
        rate=rate,
        rate_concurrency=rate_concurrency,
        max_concurrency=max_concurrency,
        base_mb=base_mb,
        mb_per_user=mb_per_user,
        hours_per_month=hours,
    )
    return estimate(users, tiers, model, deadline_days=deadline_days, budget=budget)
