"""The `estimate` command: how long a job takes and what it costs on each worker tier.

It plans every tier (``model``), within the source's documented limits (``limits``),
picks the cheapest plan that meets the deadline and budget, and when none does, says what
would (``advice``); ``--from-status`` measures the rate from the store and says which
upstream it was measured on (``upstream``). The model is printed with every estimate;
docs/monitoring.md explains it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from friendscrape.commands.estimate.advice import Advice, advise
from friendscrape.commands.estimate.limits import SourceBound, limits_assumption, source_bound
from friendscrape.commands.estimate.model import (
    Model,
    Tier,
    TierPlan,
    concurrency_for,
    load_tiers,
    plan_tier,
    plan_workers,
)
from friendscrape.commands.progress.durations import days_words
from friendscrape.commands.progress.figures import StatusReport, read_status
from friendscrape.config import Settings
from friendscrape.errors import UsageError
from friendscrape.platforms import SOURCE_NAMES

if TYPE_CHECKING:
    from friendscrape.commands.estimate.upstream import MeasuredUpstream

NO_SOURCE_NOTE = (
    "note: no source given (--source or FRIENDSCRAPE_SOURCE), so no platform's documented "
    "request limits bound this estimate"
)

__all__ = [
    "Estimate",
    "Model",
    "Tier",
    "TierPlan",
    "concurrency_for",
    "estimate",
    "load_tiers",
    "plan_tier",
    "render",
    "run_estimate",
    "to_json",
]


@dataclass(frozen=True, slots=True)
class Estimate:
    """Every tier's plan and the cheapest that meets the deadline (and budget, if any)."""

    users: int
    deadline_days: float
    budget_usd: float | None
    model: Model
    plans: tuple[TierPlan, ...]
    best: TierPlan | None
    bound: SourceBound | None = None
    advice: Advice | None = None  # what would meet both, when ``best`` is None
    notes: tuple[str, ...] = ()  # where the rate came from, printed first
    workers: int | None = None  # --workers: every tier's plan for this many workers
    measured: bool = False  # the rate was measured from the store (--from-status)


def estimate(
    users: int,
    tiers: list[Tier],
    model: Model,
    *,
    deadline_days: float,
    budget: float | None = None,
    bound: SourceBound | None = None,
    notes: tuple[str, ...] = (),
    workers: int | None = None,
    measured: bool = False,
) -> Estimate:
    """Plan every tier (with ``workers`` workers each, when given, else the fewest that
    meet the deadline); ``best`` is the cheapest that meets the deadline and the budget;
    when none does, ``advice`` says what would."""
    if users < 1 or model.rate <= 0 or deadline_days <= 0 or model.rate_concurrency < 1:
        msg = "users, rate, rate concurrency and deadline must be positive"
        raise UsageError(msg)
    if workers is None:
        plans = tuple(plan_tier(t, users, deadline_days, budget, model, bound=bound) for t in tiers)
    else:
        plans = tuple(
            plan_workers(
                t, users, workers, model, bound, deadline_days=deadline_days, budget=budget
            )
            for t in tiers
        )
    fits = [
        p
        for p in plans
        if p.meets_deadline and p.cost_usd is not None and p.within_budget is not False
    ]
    best = min(fits, key=lambda p: (p.cost_usd or 0.0, p.days)) if fits else None
    advice = None
    if best is None:
        advice = advise(users, tiers, model, bound, deadline_days=deadline_days, budget=budget)
    return Estimate(
        users, deadline_days, budget, model, plans, best, bound, advice, notes, workers, measured
    )


def measured_partitions(report: StatusReport) -> set[int]:
    """The partitions whose overall rate ``rate_from_status`` averages."""
    return {
        p.partition
        for p in report.partitions
        if p.per_day_overall and p.collected and p.partition is not None
    }


def rate_from_status(report: StatusReport) -> float | None:
    """Users per day per worker measured so far: the mean overall rate of the partitions."""
    rates = [p.per_day_overall for p in report.partitions if p.per_day_overall and p.collected]
    return sum(rates) / len(rates) if rates else None


def assumptions(
    model: Model, bound: SourceBound | None = None, *, measured: bool = False
) -> list[str]:
    """The model in words, printed with every estimate; ``measured``: the rate was
    measured from the store, not given (--rate)."""
    at_1000 = model.base_mb + model.mb_per_user * 1000
    rate = f"{model.rate:,.0f} users/day per worker at concurrency {model.rate_concurrency}"
    lines = [
        f"measured rate: {rate} (the store's results)" if measured else f"rate given: {rate}",
        (
            "throughput grows in proportion to concurrency (the upstream's latency, not CPU, "
            "limits a worker) up to the source's limits; workers do not slow each other down"
        ),
        (
            f"memory: {model.base_mb:g} MB + {model.mb_per_user:g} MB per user in flight "
            f"({at_1000:,.0f} MB at concurrency 1000), within {model.headroom:.0%} of the "
            f"tier's memory; concurrency capped at {model.max_concurrency}"
        ),
        (
            f"cost prorated per dyno-hour ({model.hours_per_month:g} hours a month); "
            "a pool tier costs its monthly price per 30 days started; the platform's own "
            "fees (an X API plan) are not counted"
        ),
    ]
    if bound is not None:
        lines.append(limits_assumption(bound))
    return lines


def money_text(usd: float | None) -> str:
    """``$1,234.50``; ``<$0.01`` for a cost under a cent; ``-`` when not possible."""
    if usd is None:
        return "-"
    if 0 < usd < 0.01:
        return "<$0.01"
    return f"${usd:,.2f}"


def to_json(est: Estimate) -> dict[str, Any]:
    """The JSON form of `friendscrape estimate --json`."""
    return {
        "schema": 1,
        "users": est.users,
        "deadline_days": est.deadline_days,
        "budget_usd": est.budget_usd,
        "notes": list(est.notes),
        "model": asdict(est.model),
        "source": asdict(est.bound) if est.bound else None,
        "workers": est.workers,
        "rate_measured": est.measured,
        "assumptions": assumptions(est.model, est.bound, measured=est.measured),
        "tiers": [asdict(p) for p in est.plans],
        "best": asdict(est.best) if est.best else None,
        "advice": asdict(est.advice) if est.advice else None,
    }


def _verdict(p: TierPlan, est: Estimate) -> str:
    if p.cost_usd is None:
        return "pool too small"
    if est.workers is not None and not p.meets_deadline and p.days <= est.deadline_days:
        return "more workers than the tier allows"
    if not p.meets_deadline:
        if p.binds == "fleet":
            return "too slow (the token quota)"
        return "too slow (at its worker limit)"
    if p.within_budget is False:
        return "over budget"
    return "ok"


def binding_line(est: Estimate) -> str:
    """Which bound sets the pace of the plan shown: the workers or the source's limits."""
    bound = est.bound
    focus = est.best or _fastest(est.plans)
    if bound is None or focus is None:
        return ""
    workers = focus.workers_run
    if focus.binds == "fleet":
        return f"bound by the token quota ({bound.fleet_reason}), not by the workers"
    if focus.binds == "source":
        return f"each worker bound by {bound.per_worker_reason}, not by its concurrency"
    speed = f"{workers} x {focus.users_per_day_per_worker:,.0f} users/day"
    if bound.fleet is not None:
        return f"bound by the workers ({speed}), not by the token quota ({bound.fleet_reason})"
    if bound.per_worker is not None:
        return (
            f"bound by the workers ({speed}), not by the source's limit "
            f"({bound.per_worker_reason}, per worker)"
        )
    return f"bound by the workers ({speed}); {bound.source} has no documented request limit"


def _fastest(plans: tuple[TierPlan, ...]) -> TierPlan | None:
    possible = [p for p in plans if p.cost_usd is not None]
    return min(possible, key=lambda p: p.days) if possible else None


def advice_lines(est: Estimate) -> list[str]:
    """What would meet the deadline and budget, with the figures to ask for it."""
    advice = est.advice
    goal = f"{est.deadline_days:g} days" + (
        f" and ${est.budget_usd:,.0f}" if est.budget_usd is not None else ""
    )
    lines = [f"no tier meets {goal}; what would:"]
    if advice is None:
        return lines
    if advice.more_money is not None:
        s = advice.more_money
        lines.append(
            f"  - more money: ${s.budget_usd:,.0f} meets {est.deadline_days:g} days "
            f"({s.workers} x {s.tier}, {days_words(s.days)}, {money_text(s.cost_usd)})"
        )
    if advice.more_days is not None:
        s = advice.more_days
        within = f"within ${est.budget_usd:,.0f}" if est.budget_usd is not None else "at any cost"
        lines.append(
            f"  - more time: allow {s.deadline_days:g} days, the fewest {within} "
            f"({s.workers} x {s.tier}, {days_words(s.days)}, {money_text(s.cost_usd)})"
        )
    if advice.more_workers is not None:
        s = advice.more_workers
        lines.append(
            f"  - more workers: {s.workers} x {s.tier} would meet both "
            f"({days_words(s.days)}, {money_text(s.cost_usd)}), but the tiers file allows "
            f"{advice.max_workers}: raise its max_workers (--tiers FILE)"
        )
    if advice.more_tokens is not None:
        pooled = advice.tokens_plan
        plan = (
            f" ({pooled.workers} x {pooled.tier}, {days_words(pooled.days)}, "
            f"{money_text(pooled.cost_usd)})"
            if pooled is not None
            else ""
        )
        lines.append(
            f"  - more tokens: {advice.more_tokens} tokens meet {est.deadline_days:g} days"
            f"{plan} (--tokens {advice.more_tokens})"
        )
    if len(lines) == 1:
        lines.append("  - nothing within these limits: change the budget, deadline or tiers")
    return lines


def render(est: Estimate) -> str:
    """The people's form: one line per tier, the cheapest plan or what would meet the
    goals, which bound binds, the assumptions."""
    lines = [*est.notes]
    lines.append(
        f"{est.users:,} users"
        + (f", {est.workers} workers" if est.workers is not None else "")
        + f", deadline {est.deadline_days:g} days"
        + (f", budget ${est.budget_usd:,.0f}" if est.budget_usd is not None else "")
        + (f", source {est.bound.source}" if est.bound is not None else "")
    )
    lines.append(
        f"{'tier':<14} {'memory':>8} {'conc.':>6} {'users/day/w':>11} {'workers':>7} "
        f"{'time':>11} {'cost':>10}  verdict"
    )
    for p in est.plans:
        shown = p.workers_run if est.workers is not None else p.workers
        workers = str(shown) if shown is not None else "-"
        lines.append(
            f"{p.tier:<14} {p.memory_mb:>6,.0f}MB {p.concurrency:>6} "
            f"{p.users_per_day_per_worker:>11,.0f} {workers:>7} {days_words(p.days):>11} "
            f"{money_text(p.cost_usd):>10}  {_verdict(p, est)}"
        )
    if est.best is not None:
        b = est.best
        lines.append(
            f"cheapest in time{' with these workers' if est.workers else ''}: "
            f"{b.workers} x {b.tier} (concurrency {b.concurrency}), "
            f"{days_words(b.days)}, {money_text(b.cost_usd)}: plan {b.workers} partitions"
        )
    else:
        lines.extend(advice_lines(est))
    binding = binding_line(est)
    if binding:
        lines.append(binding)
    lines.append("assumptions:")
    lines.extend(f"  - {a}" for a in assumptions(est.model, est.bound, measured=est.measured))
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What the estimate needs to know of the source: which, its tokens, list sizes, pace."""

    source: str | None = None  # None: the settings' source
    tokens: int | None = None  # None: count the configured x-api tokens
    mean_friends: float | None = None
    rate_limit: float | None = None  # None: the settings' rate_limit


def bound_for(settings: Settings, options: SourceOptions) -> SourceBound | None:
    """The source's limits for this job (None: no source given, so no platform's limits
    bound it); the tokens are counted, never read out."""
    source = options.source or settings.source
    if source is None:
        return None
    tokens = options.tokens
    if tokens is None and source == "x-api":
        tokens = len(settings.credentials().tokens) or None
    return source_bound(
        source,
        tokens=tokens,
        mean_friends=options.mean_friends,
        max_friends=settings.max_friends,
        rate_limit=options.rate_limit if options.rate_limit is not None else settings.rate_limit,
    )


def _job_source(
    settings: Settings, options: SourceOptions, report: StatusReport, upstream: MeasuredUpstream
) -> str | None:
    """The platform whose limits bound an estimate from the store: the job's (recorded,
    else its results' or its runs' one source); one given that differs is a UsageError."""
    asked = options.source or settings.source
    platform = report.facts.platform if report.facts is not None else ""
    if platform not in SOURCE_NAMES:
        platform = upstream.sources[0] if len(upstream.sources) == 1 else ""
    if not platform:
        return asked
    if asked is not None and asked != platform:
        msg = (
            f"this job's platform is {platform}, not {asked} from --source or "
            "FRIENDSCRAPE_SOURCE: leave it out to estimate the job as measured"
        )
        raise UsageError(msg)
    return platform


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
    source: SourceOptions | None = None,
    allow_simulated: bool = False,
    workers: int | None = None,
) -> Estimate:
    """The `estimate` command's work; reads the store only with ``from_status``."""
    notes: tuple[str, ...] = ()
    options = source or SourceOptions()
    if from_status:
        from friendscrape.commands.estimate import upstream as runs  # noqa: PLC0415

        report = await read_status(settings)
        measured = rate_from_status(report)
        if measured is None:
            msg = "the store has no results to measure a rate from yet: pass --rate"
            raise UsageError(msg)
        samples = await runs.read_samples(settings)
        upstream = runs.measured_upstream(samples, measured_partitions(report))
        notes = runs.upstream_notes(upstream, allow_simulated=allow_simulated)
        options = replace(options, source=_job_source(settings, options, report, upstream))
        rate = measured
        users = users if users is not None else report.total.remaining
        if users == 0:
            msg = (
                f"nothing left to collect: all {report.total.users:,} users of this job are "
                "done; give --users N to estimate N more at its measured rate"
            )
            raise UsageError(msg)
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
    bound = bound_for(settings, options)
    if bound is None:
        notes = (*notes, NO_SOURCE_NOTE)
    return estimate(
        users,
        tiers,
        model,
        deadline_days=deadline_days,
        budget=budget,
        bound=bound,
        notes=notes,
        workers=workers,
        measured=from_status,
    )
