"""What would meet the deadline and budget when no tier does: more money, time, workers, tokens.

Each suggestion is a figure to pass back to `estimate` (``--budget``, ``--deadline-days``,
a tiers file's ``max_workers``, ``--tokens``) that then finds a plan: budgets are rounded
up to whole dollars and days up to a tidy figure, never down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from friendscrape.commands.estimate.limits import SourceBound
from friendscrape.commands.estimate.model import (
    Model,
    Tier,
    TierPlan,
    fastest_plan,
    pace_of,
    plan_tier,
    plan_workers,
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One plan that would work, and the figure to ask for it with."""

    tier: str
    workers: int
    days: float
    cost_usd: float
    deadline_days: float  # the deadline to pass (``days`` rounded up)
    budget_usd: float  # the budget to pass (``cost_usd`` rounded up to a dollar)


@dataclass(frozen=True, slots=True)
class Advice:
    """What would meet the job's goals; None where that route does not help."""

    more_money: Suggestion | None  # the cheapest plan that meets the deadline
    more_days: Suggestion | None  # the fastest plan within the budget
    more_workers: Suggestion | None  # a tier that meets both with more than its limit
    max_workers: int | None  # that tier's limit
    more_tokens: int | None  # the token pool that would meet the deadline (x-api)
    tokens_plan: Suggestion | None = None  # the cheapest plan with ``more_tokens`` tokens


def round_up_days(days: float) -> float:
    """``days`` rounded up: whole days from 10, tenths from 1, hundredths below."""
    step = 1.0 if days >= 10 else 0.1 if days >= 1 else 0.01
    value = math.ceil(days / step - 1e-9) * step
    while value < days:  # float steps can land a hair below
        value += step
    return float(f"{value:.2f}")


def _suggest(plan: TierPlan) -> Suggestion:
    cost = plan.cost_usd or 0.0
    return Suggestion(
        tier=plan.tier,
        workers=plan.workers_run,
        days=plan.days,
        cost_usd=cost,
        deadline_days=round_up_days(plan.days),
        budget_usd=float(math.ceil(cost - 1e-9)) if cost > 0 else 0.0,
    )


def advise(
    users: int,
    tiers: list[Tier],
    model: Model,
    bound: SourceBound | None,
    *,
    deadline_days: float,
    budget: float | None,
) -> Advice:
    """The ways out when no tier meets ``deadline_days`` within ``budget``."""
    more_money = None
    if budget is not None:
        meeting = [
            p
            for p in (plan_tier(t, users, deadline_days, None, model, bound=bound) for t in tiers)
            if p.meets_deadline and p.cost_usd is not None
        ]
        if meeting:
            more_money = _suggest(min(meeting, key=lambda p: (p.cost_usd or 0.0, p.days)))
    fastest = [
        p
        for p in (fastest_plan(t, users, model, bound, budget) for t in tiers)
        if p.cost_usd is not None and p.within_budget is not False
    ]
    more_days = _suggest(min(fastest, key=lambda p: (p.days, p.cost_usd))) if fastest else None
    more_workers, limit = _more_workers(
        users, tiers, model, bound, deadline_days=deadline_days, budget=budget
    )
    more_tokens, tokens_plan = None, None
    if bound is not None and bound.fleet is not None and users > bound.fleet * deadline_days:
        more_tokens = bound.tokens_for(users, deadline_days)
        if more_tokens is not None:
            pooled = bound.with_tokens(more_tokens)
            meeting = [
                p
                for p in (
                    plan_tier(t, users, deadline_days, None, model, bound=pooled) for t in tiers
                )
                if p.meets_deadline and p.cost_usd is not None
            ]
            if meeting:
                tokens_plan = _suggest(min(meeting, key=lambda p: (p.cost_usd or 0.0, p.days)))
    return Advice(more_money, more_days, more_workers, limit, more_tokens, tokens_plan)


def _more_workers(
    users: int,
    tiers: list[Tier],
    model: Model,
    bound: SourceBound | None,
    *,
    deadline_days: float,
    budget: float | None,
) -> tuple[Suggestion | None, int | None]:
    """The cheapest tier that meets both with more workers than its limit allows."""
    found: list[tuple[TierPlan, int]] = []
    for tier in tiers:
        pace = pace_of(tier, model, bound)
        if pace.fleet is not None and pace.fleet * deadline_days < users:
            continue  # the token pool, not the workers, is short
        needed = max(math.ceil(users / (pace.per_worker * deadline_days)), 1)
        # A limit of one is the tier's rule (Heroku's Eco and Basic run one dyno per
        # process type), not a quota to raise.
        if needed <= tier.max_workers or tier.max_workers == 1:
            continue
        stretched = Tier(
            tier.name,
            tier.memory_mb,
            tier.usd_per_month,
            needed,
            tier.billing,
            tier.pool_hours,
        )
        plan = plan_workers(
            stretched, users, needed, model, bound, deadline_days=deadline_days, budget=budget
        )
        if plan.meets_deadline and plan.within_budget is not False:
            found.append((plan, tier.max_workers))
    if not found:
        return None, None
    plan, limit = min(found, key=lambda f: (f[0].cost_usd or 0.0, f[0].days))
    return _suggest(plan), limit
