"""Where every partition stands: progress, statuses, rates and ETA, read from any store.

The figures come from one aggregate query (``Store.partition_summary``) plus the plan,
so `friendscrape status` stays cheap on millions of users and can run from any machine
while workers are collecting. ``to_json`` is a stable, versioned document (``schema``)
that scripts and dashboards read; docs/monitoring.md describes every field.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from friendscrape.config import Settings
from friendscrape.models import Partition, Status
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import ReadStore, StatusSummary

SCHEMA_VERSION = 1
"""Bumped only when a field of the JSON document changes meaning or disappears."""

STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
DEFAULT_WINDOW = 3600.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One partition's figures (``partition`` is None for the whole job)."""

    partition: int | None
    users: int
    collected: int
    statuses: Mapping[str, int]
    friends_ok: int
    seconds: float
    first_start: datetime | None
    last_end: datetime | None
    recent: int
    window: float
    eta_seconds: float | None = None

    @property
    def remaining(self) -> int:
        """Planned users with no result yet."""
        return max(self.users - self.collected, 0)

    @property
    def percent_done(self) -> float:
        """Collected users as a share of planned users, 0 to 100."""
        if self.users <= 0:
            return 100.0 if self.collected else 0.0
        return min(100.0 * self.collected / self.users, 100.0)

    @property
    def avg_friends(self) -> float | None:
        """Mean names collected per user whose status is ok."""
        ok = self.statuses.get(Status.OK.value, 0)
        return self.friends_ok / ok if ok else None

    @property
    def avg_seconds(self) -> float | None:
        """Mean seconds from a user's start to its end (all statuses)."""
        return self.seconds / self.collected if self.collected else None

    @property
    def per_day_last_hour(self) -> float:
        """Users per day at the rate of the last window (an hour by default)."""
        return self.recent * _DAY / self.window if self.window > 0 else 0.0

    @property
    def per_day_overall(self) -> float | None:
        """Users per day between the first start and the last end (None: too few results)."""
        if self.first_start is None or self.last_end is None:
            return None
        span = (self.last_end - self.first_start).total_seconds()
        return self.collected * _DAY / span if span > 0 else None

    @property
    def rate(self) -> float | None:
        """Users per day used for the ETA: the last window's, else the overall one."""
        if self.recent > 0:
            return self.per_day_last_hour
        return self.per_day_overall


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Every partition's figures and the total, as of ``generated_at``."""

    generated_at: datetime
    partitions: tuple[PartitionStatus, ...]
    total: PartitionStatus
    planned: bool = True
    notes: tuple[str, ...] = field(default=())
    unplaced: int = 0


def _eta(remaining: int, rate: float | None) -> float | None:
    if remaining == 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return remaining * _DAY / rate


def build_report(
    plan: Sequence[Partition],
    summaries: Iterable[StatusSummary],
    *,
    now: datetime,
    window: float = DEFAULT_WINDOW,
    user_count: int | None = None,
    unplaced: int = 0,
) -> StatusReport:
    """Combine the plan with the store's aggregates into per-partition and total figures.

    ``unplaced`` users (imported after the plan) count in the total's users and
    remaining, so a job with users no run will collect never shows as done.

    A partition that has not produced a result yet gets the mean rate of those that
    have, so the job's ETA assumes it starts now; the job's ETA is its slowest
    partition's, since every partition is one worker and the job ends with the last.
    """
    grouped: dict[int, list[StatusSummary]] = {}
    for row in summaries:
        grouped.setdefault(row.partition, []).append(row)
    planned_users = {p.number: p.user_count for p in plan}
    numbers = sorted(set(planned_users) | set(grouped))
    parts: list[PartitionStatus] = []
    for number in numbers:
        rows = grouped.get(number, [])
        collected = sum(r.users for r in rows)
        parts.append(
            _combine(number, planned_users.get(number, collected), rows, window=window, now=now)
        )
    known = [p.rate for p in parts if p.rate and p.remaining]
    fallback = sum(known) / len(known) if known else None
    with_eta = []
    for p in parts:
        rate = p.rate if p.rate else fallback
        with_eta.append(replace(p, eta_seconds=_eta(p.remaining, rate)))
    all_rows = [r for rows in grouped.values() for r in rows]
    total_users = sum(planned_users.values()) + unplaced if plan else (user_count or 0)
    total = _combine(None, total_users, all_rows, window=window, now=now)
    etas = [p.eta_seconds for p in with_eta]
    if total.remaining == 0:
        total_eta: float | None = 0.0
    elif not plan:
        total_eta = _eta(total.remaining, total.rate)
    else:
        total_eta = None if any(e is None for e in etas) else max((e or 0.0) for e in etas)
    if plan and unplaced:
        total_eta = None  # no run collects unplaced users, so the job has no end yet
    notes: list[str] = []
    if not plan:
        notes.append("no partition plan yet: totals only count users against the users table")
    if plan and unplaced:
        notes.append(
            f"{unplaced} users are outside the partition plan and no run collects them: "
            "run 'friendscrape partitions place' to add them to the plan"
        )
    return StatusReport(
        generated_at=now,
        partitions=tuple(with_eta),
        total=replace(total, eta_seconds=total_eta),
        planned=bool(plan),
        notes=tuple(notes),
        unplaced=unplaced if plan else 0,
    )


def _combine(
    number: int | None,
    users: int,
    rows: Sequence[StatusSummary],
    *,
    window: float,
    now: datetime,
) -> PartitionStatus:
    statuses: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
    for r in rows:
        statuses[r.status] += r.users
    starts = [r.first_start for r in rows if r.first_start is not None]
    ends = [r.last_end for r in rows if r.last_end is not None]
    if starts:
        # A partition that started inside the window has been running for less than it:
        # its recent rate is over the time it has run, not over the whole window.
        window = max(min(window, (now - min(starts)).total_seconds()), 1.0)
    return PartitionStatus(
        partition=number,
        users=users,
        collected=sum(r.users for r in rows),
        statuses=dict(statuses),
        friends_ok=sum(r.friends for r in rows if r.status == Status.OK.value),
        seconds=sum(r.seconds for r in rows),
        first_start=min(starts) if starts else None,
        last_end=max(ends) if ends else None,
        recent=sum(r.recent for r in rows),
        window=window,
    )


async def gather_status(
    store: ReadStore, *, now: datetime | None = None, window: float = DEFAULT_WINDOW
) -> StatusReport:
    """Read the plan and the aggregates from an opened store and build the report."""
    moment = now if now is not None else datetime.now(UTC)
    plan = await store.partitions()
    summaries = await store.partition_summary(since=moment - timedelta(seconds=window))
    user_count = None if plan else await store.user_count()
    unplaced = await store.unplaced_count() if plan else 0
    return build_report(
        plan, summaries, now=moment, window=window, user_count=user_count, unplaced=unplaced
    )


async def read_status(settings: Settings, *, window: float = DEFAULT_WINDOW) -> StatusReport:
    """The `status` command's work: open the settings' store read-only, report (the reads
    made again while one fails transiently: they change nothing)."""
    async with opened_store(settings, read_only=True) as store:
        return await retried(settings, "status", lambda: gather_status(store, window=window))


# -- output -----------------------------------------------------------------------------


def _stamp(moment: datetime | None) -> str | None:
    """A time in the JSON document: ISO 8601 UTC to the second."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def row_json(p: PartitionStatus, now: datetime) -> dict[str, Any]:
    """One row of the JSON document (see docs/monitoring.md for each field)."""
    eta_at = None if p.eta_seconds is None else now + timedelta(seconds=p.eta_seconds)
    return {
        "partition": p.partition,
        "users": p.users,
        "collected": p.collected,
        "remaining": p.remaining,
        "percent_done": round(p.percent_done, 2),
        "statuses": dict(p.statuses),
        "avg_friends": _round(p.avg_friends),
        "avg_seconds_per_user": _round(p.avg_seconds, 3),
        "users_per_day_last_hour": round(p.per_day_last_hour, 1),
        "users_per_day_overall": _round(p.per_day_overall, 1),
        "first_start": _stamp(p.first_start),
        "last_end": _stamp(p.last_end),
        "eta_seconds": _round(p.eta_seconds, 0),
        "eta_at": _stamp(eta_at),
    }


def to_json(report: StatusReport) -> dict[str, Any]:
    """The stable JSON document of `friendscrape status --json` (``schema`` versions it)."""
    now = report.generated_at
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": _stamp(now),
        "window_seconds": report.total.window,
        "planned": report.planned,
        "unplaced_users": report.unplaced,
        "partitions": [row_json(p, now) for p in report.partitions],
        "total": row_json(report.total, now),
        "notes": list(report.notes),
    }


def human_duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``12m``, ``40s``; ``-`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds <= 0:
        return "done"
    s = round(seconds)
    if s == 0:
        return "<1s"
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


_SHORT = {
    "ok": "ok",
    "protected": "prot",
    "not_found": "nfound",
    "suspended": "susp",
    "deactivated": "deact",
    "invalid": "inval",
    "failed": "failed",
}


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%m-%d %H:%M")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_table(report: StatusReport) -> str:
    """The people's form: one line per partition and a total line."""
    head = [
        f"{'part':>5}",
        f"{'users':>9}",
        f"{'done':>9}",
        f"{'left':>9}",
        f"{'%':>6}",
        *(f"{_SHORT[s]:>7}" for s in STATUSES),
        f"{'friends':>7}",
        f"{'s/user':>7}",
        f"{'/day 1h':>9}",
        f"{'/day all':>9}",
        f"{'first start':>11}",
        f"{'last end':>11}",
        f"{'ETA':>8}",
    ]
    lines = ["  ".join(head)]
    for p in (*report.partitions, report.total):
        cells = [
            f"{'total' if p.partition is None else p.partition:>5}",
            f"{p.users:>9}",
            f"{p.collected:>9}",
            f"{p.remaining:>9}",
            f"{p.percent_done:>6.1f}",
            *(f"{p.statuses.get(s, 0):>7}" for s in STATUSES),
            f"{_num(p.avg_friends, '.1f'):>7}",
            f"{_num(p.avg_seconds, '.2f'):>7}",
            f"{p.per_day_last_hour:>9,.0f}",
            f"{_num(p.per_day_overall, ',.0f'):>9}",
            f"{_when(p.first_start):>11}",
            f"{_when(p.last_end):>11}",
            f"{human_duration(p.eta_seconds):>8}",
        ]
        lines.append("  ".join(cells))
    lines.append(
        f"as of {_stamp(report.generated_at)}; '/day 1h' is the rate of the last "
        f"{report.total.window / 60:g} minutes; ETA uses it, else the overall rate"
    )
    lines.extend(report.notes)
    return "\n".join(lines)
