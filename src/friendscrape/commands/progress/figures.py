"""A job's progress as every partition stands: counts, statuses, rates and ETA, from any store.

The shared read model of `status`, `estimate --from-status` and `report`: the figures
come from aggregate queries only (``partition_summary`` for the results,
``latest_samples`` and ``sample_buckets`` for what the runs met) plus the plan, so they
stay cheap on millions of users and can be read from any machine while workers are
collecting. How the commands show them is theirs (``commands.status`` for the table and
the JSON document, ``commands.report`` for the page).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.models import Partition, Status
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import ReadStore, RunSample, SampleBucket, StatusSummary

STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
DEFAULT_WINDOW = 3600.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a partition's runs met, from their samples: 429s and paused time in the
    window, and from the newest sample the learned rate and where the run went."""

    rate_limited: int = 0
    paused_seconds: float = 0.0
    learned_rate: float | None = None
    upstream_host: str = ""
    simulated: bool = False
    source: str = ""
    last_sample_at: datetime | None = None
    finished: bool = False
    """The newest sample is a run's last (no run of the partition is going now)."""


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One partition's figures (``partition`` is None for the whole job).

    ``window`` is the span asked for the recent rate; ``span`` the seconds of it that
    hold data (shorter when the first result is younger than the window).
    """

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
    span: float = 0.0
    eta_seconds: float | None = None
    eta_estimated: bool = False
    """The ETA borrows the mean rate of other partitions (this one has none of its own)."""
    run: RunFacts | None = None

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
        """Users per day at the rate of the last window (an hour by default), over the
        part of the window that holds data."""
        span = self.span or self.window
        return self.recent * _DAY / span if span > 0 else 0.0

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


def _borrowed_rate(parts: Sequence[PartitionStatus]) -> float | None:
    """The rate a partition with none of its own is given: the mean of the running
    partitions' (results in the window and users left), else of every partition that
    has a rate (the finished ones' overall rates), else None."""
    running = [p.rate for p in parts if p.rate and p.remaining and p.recent]
    known = running or [p.rate for p in parts if p.rate]
    return sum(known) / len(known) if known else None


def build_report(
    plan: Sequence[Partition],
    summaries: Iterable[StatusSummary],
    *,
    now: datetime,
    window: float = DEFAULT_WINDOW,
    user_count: int | None = None,
    unplaced: int = 0,
    samples: Mapping[int, RunSample] | None = None,
    buckets: Iterable[SampleBucket] = (),
) -> StatusReport:
    """Combine the plan with the store's aggregates into per-partition and total figures.

    ``unplaced`` users (imported after the plan) count in the total's users and
    remaining, so a job with users no run will collect never shows as done.

    A partition with no rate of its own (not started yet) gets the mean rate of the
    running partitions, so its ETA assumes it starts now, marked as estimated; the
    job's ETA is its slowest partition's, since every partition is one worker and the
    job ends with the last. ``samples`` (each partition's newest run sample) and
    ``buckets`` (run samples summed in the window) add what the runs met.
    """
    grouped: dict[int, list[StatusSummary]] = {}
    for row in summaries:
        grouped.setdefault(row.partition, []).append(row)
    facts = _run_facts(samples or {}, buckets)
    planned_users = {p.number: p.user_count for p in plan}
    numbers = sorted(set(planned_users) | set(grouped))
    parts: list[PartitionStatus] = []
    for number in numbers:
        rows = grouped.get(number, [])
        collected = sum(r.users for r in rows)
        part = _combine(number, planned_users.get(number, collected), rows, window=window, now=now)
        parts.append(replace(part, run=facts.get(number)))
    borrowed = _borrowed_rate(parts)
    with_eta = [
        replace(
            p,
            eta_seconds=_eta(p.remaining, p.rate or borrowed),
            eta_estimated=bool(p.remaining and not p.rate and borrowed),
        )
        for p in parts
    ]
    all_rows = [r for rows in grouped.values() for r in rows]
    total_users = sum(planned_users.values()) + unplaced if plan else (user_count or 0)
    total = _combine(None, total_users, all_rows, window=window, now=now)
    total = replace(total, run=_total_facts(list(facts.values())))
    total_eta, estimated = _total_eta(total, with_eta, planned=bool(plan), unplaced=unplaced)
    notes: list[str] = []
    if not plan:
        notes.append("no partition plan yet: totals only count users against the users table")
    if plan and unplaced:
        notes.append(
            f"{unplaced} users are outside the partition plan and no run collects them: "
            "run 'friendscrape partitions place' to add them to the plan"
        )
    notes.extend(_simulator_notes(with_eta))
    return StatusReport(
        generated_at=now,
        partitions=tuple(with_eta),
        total=replace(total, eta_seconds=total_eta, eta_estimated=estimated),
        planned=bool(plan),
        notes=tuple(notes),
        unplaced=unplaced if plan else 0,
    )


def _total_eta(
    total: PartitionStatus, parts: Sequence[PartitionStatus], *, planned: bool, unplaced: int
) -> tuple[float | None, bool]:
    """The job's ETA and whether it is estimated: its slowest partition's; without a
    plan the whole job's rate; users outside the plan at the whole job's rate, as if
    they were placed now (no run collects them until they are)."""
    if total.remaining == 0:
        return 0.0, False
    if not planned:
        return _eta(total.remaining, total.rate), False
    left = [p for p in parts if p.remaining]
    etas = [p.eta_seconds for p in left]
    if any(e is None for e in etas):
        return None, False
    eta = max((e or 0.0 for e in etas), default=0.0)
    estimated = any(p.eta_estimated for p in left)
    if unplaced:
        rate = total.rate or _borrowed_rate(parts)
        extra = _eta(unplaced, rate)
        if extra is None:
            return None, False
        eta, estimated = max(eta, extra), True
    return eta, estimated


def _run_facts(
    samples: Mapping[int, RunSample], buckets: Iterable[SampleBucket]
) -> dict[int, RunFacts]:
    """Per partition: 429s and pauses summed over the window's buckets, the rest from
    its newest sample."""
    limited: Counter[int] = Counter()
    paused: dict[int, float] = {}
    for b in buckets:
        limited[b.partition] += b.rate_limited
        paused[b.partition] = paused.get(b.partition, 0.0) + b.paused_seconds
    facts: dict[int, RunFacts] = {}
    for number in sorted(set(samples) | set(limited) | set(paused)):
        latest = samples.get(number)
        facts[number] = RunFacts(
            rate_limited=limited.get(number, 0),
            paused_seconds=paused.get(number, 0.0),
            learned_rate=latest.learned_rate if latest is not None else None,
            upstream_host=latest.upstream_host if latest is not None else "",
            simulated=latest.simulated if latest is not None else False,
            source=latest.source if latest is not None else "",
            last_sample_at=latest.at if latest is not None else None,
            finished=latest.final if latest is not None else False,
        )
    return facts


def _total_facts(facts: Sequence[RunFacts]) -> RunFacts | None:
    """The job's: sums, the lowest learned rate, simulated when any run was."""
    if not facts:
        return None
    rates = [f.learned_rate for f in facts if f.learned_rate is not None]
    hosts = sorted({f.upstream_host for f in facts if f.upstream_host})
    return RunFacts(
        rate_limited=sum(f.rate_limited for f in facts),
        paused_seconds=sum(f.paused_seconds for f in facts),
        learned_rate=min(rates) if rates else None,
        upstream_host=", ".join(hosts),
        simulated=any(f.simulated for f in facts),
        source=", ".join(sorted({f.source for f in facts if f.source})),
        last_sample_at=max((f.last_sample_at for f in facts if f.last_sample_at), default=None),
        finished=all(f.finished for f in facts),
    )


def _simulator_notes(parts: Sequence[PartitionStatus]) -> list[str]:
    """Say so when the rates come from a local simulator: they are no real upstream's."""
    simulated = [p for p in parts if p.run is not None and p.run.simulated]
    if not simulated:
        return []
    hosts = ", ".join(sorted({p.run.upstream_host for p in simulated if p.run is not None}))
    sampled = [p for p in parts if p.run is not None and p.run.last_sample_at is not None]
    if len(simulated) == len(sampled):
        return [f"rates measured against a local simulator ({hosts}), not a real upstream"]
    numbers = ", ".join(str(p.partition) for p in simulated)
    note = f"partitions {numbers}: rates measured against a local simulator ({hosts}), "
    return [note + "not a real upstream"]


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
    span = window
    if starts:
        # A partition that started inside the window has been running for less than it:
        # its recent rate is over the time it has run, not over the whole window.
        span = max(min(window, (now - min(starts)).total_seconds()), 1.0)
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
        span=span,
    )


async def gather_status(
    store: ReadStore, *, now: datetime | None = None, window: float = DEFAULT_WINDOW
) -> StatusReport:
    """Read the plan and the aggregates from an opened store and build the report."""
    moment = now if now is not None else datetime.now(UTC)
    since = moment - timedelta(seconds=window)
    plan = await store.partitions()
    summaries = await store.partition_summary(since=since)
    user_count = None if plan else await store.user_count()
    unplaced = await store.unplaced_count() if plan else 0
    samples = await store.latest_samples()
    # One bucket as long as the window (or two, as buckets start on multiples of it).
    buckets = await store.sample_buckets(max(math.ceil(window), 1), since=since)
    return build_report(
        plan,
        summaries,
        now=moment,
        window=window,
        user_count=user_count,
        unplaced=unplaced,
        samples=samples,
        buckets=buckets,
    )


async def read_status(settings: Settings, *, window: float = DEFAULT_WINDOW) -> StatusReport:
    """Open the settings' store read-only and build its report (the reads made again
    while one fails transiently: they change nothing)."""
    async with opened_store(store_config(settings), read_only=True) as store:
        return await retried(
            store_retry_policy(settings), "status", lambda: gather_status(store, window=window)
        )
