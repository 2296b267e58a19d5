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
from urllib.parse import urlsplit

from friendscrape.commands.progress import waves
from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.models import Partition, PlanCut, Status
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import (
    LeaseHolder,
    ReadStore,
    RunSample,
    RunSpan,
    SampleBucket,
    StatusSummary,
)

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

    Rates are users per day over the partition's active time: the time its runs were
    at work (from their samples: a run's first to its last, to now while its lease is
    live), never the hours nobody ran it; without samples, from its first result to its
    last (to now while its lease is live). ``per_day_last_hour`` is the same over the
    active time inside the window. For the whole job both are the sums of the
    partitions whose run is collecting now.
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
    active_seconds: float = 0.0
    """Seconds the partition's runs were at work (the job's: summed over partitions)."""
    per_day_overall: float | None = None
    """Users per day over the active time (None: no result or no active time yet)."""
    per_day_last_hour: float = 0.0
    """Users per day over the active time inside the window (0: none in it)."""
    running: bool = False
    """A run holds a live lease on the partition (the job's: any does)."""
    holder: LeaseHolder | None = None
    """The live lease's holder (None when no run holds one)."""

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
    def collecting(self) -> bool:
        """Running with users left: its rate counts in the job's."""
        return self.running and self.remaining > 0

    @property
    def rate(self) -> float | None:
        """Users per day used for the ETA: over the active time."""
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
    facts: JobFacts | None = None
    store: str = ""
    """The store's URL as shown (no user name, password, query or fragment)."""
    plan_cut: PlanCut | None = None
    """How the plan was cut, as the store records it (None: no plan, or none recorded)."""


@dataclass(frozen=True, slots=True)
class Fleet:
    """The plan's partitions as a fleet sees them: ``done`` (nothing left, no live
    lease), ``held`` (a live lease: the worker at it) and ``free`` (users left, nobody
    at it: the next ``run --partition next`` claims the lowest of them). A worker holds
    two partitions briefly: it claims its next one while the last users of the one
    before are still in flight (claim-ahead)."""

    done: int
    held: tuple[PartitionStatus, ...]
    free: int
    cut: PlanCut | None = None
    """How the plan was cut (None: not recorded)."""

    @property
    def holders(self) -> int:
        """The workers (runs) holding the held partitions."""
        return len({p.holder.run_id for p in self.held if p.holder is not None})

    def also_held(self, p: PartitionStatus) -> tuple[int, ...]:
        """The other partitions ``p``'s worker holds (claimed ahead, or draining)."""
        if p.holder is None:
            return ()
        run_id = p.holder.run_id
        return tuple(
            o.partition
            for o in self.held
            if o is not p and o.partition is not None and o.holder and o.holder.run_id == run_id
        )

    def summary(self) -> str:
        """``100 partitions: 37 done, 10 held, 53 free``; with ``by 9 workers`` after the
        held ones when a worker holds two, and ``; balanced by ...`` when the store
        records how the plan was cut (a fleet balanced by pages under another cap than
        its workers' is less even)."""
        total = self.done + len(self.held) + self.free
        workers = "worker" if self.holders == 1 else "workers"
        by = f" by {self.holders} {workers}" if self.holders != len(self.held) else ""
        said = f"{total} partitions: {self.done} done, {len(self.held)} held{by}, {self.free} free"
        return said if self.cut is None else f"{said}; {self.cut.describe()}"

    def holder_of(self, p: PartitionStatus) -> str:
        """``holder_words``, and the other partition its worker holds, if any."""
        others = self.also_held(p)
        if not others:
            return holder_words(p)
        listed = ", ".join(str(o) for o in others)
        return f"{holder_words(p)}; this worker also holds {listed} (claimed ahead)"


def fleet(report: StatusReport) -> Fleet | None:
    """The fleet of a planned job (None: no plan)."""
    if not report.planned or not report.partitions:
        return None
    held = tuple(p for p in report.partitions if p.holder is not None)
    idle = [p for p in report.partitions if p.holder is None]
    done = sum(1 for p in idle if p.remaining == 0)
    return Fleet(done=done, held=held, free=len(idle) - done, cut=report.plan_cut)


def holder_words(p: PartitionStatus) -> str:
    """``pid 4242 on worker-a, since 2024-05-01 12:00:03Z`` (the live lease's holder)."""
    h = p.holder
    if h is None:
        return "nobody"
    since = h.acquired_at.strftime("%Y-%m-%d %H:%M:%SZ") if h.acquired_at else "?"
    return f"pid {h.pid} on {h.host}, since {since}"


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What the job counts and where from: the platform of its results (the most
    common ``source``, or ``mixed``), the runs seen, and the ETA as if every partition
    with users left had a worker (``workers_needed`` of them) at its own rate, or at
    the mean per-worker rate where it has none."""

    platform: str = ""
    workers_seen: int = 0
    workers_running: int = 0
    workers_needed: int = 0
    eta_all_seconds: float | None = None
    eta_all_estimated: bool = False
    simulated: bool = False


def _eta(remaining: int, rate: float | None) -> float | None:
    if remaining == 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return remaining * _DAY / rate


def _per_worker(parts: Sequence[PartitionStatus]) -> float | None:
    """One worker's rate where a partition has none of its own: the mean of the
    partitions' own rates (each over its active time), else None."""
    known = [p.rate for p in parts if p.rate]
    return sum(known) / len(known) if known else None


def _intervals(
    number: int,
    spans: Sequence[RunSpan],
    holder: LeaseHolder | None,
    part: PartitionStatus,
    now: datetime,
) -> list[tuple[datetime, datetime]]:
    """When the partition's runs were at work: each run's samples, the live lease's run
    to now; without samples, its first result to its last (to now while leased). No
    interval reaches past the last result unless a run is collecting now."""
    live = holder is not None
    own = sorted((s for s in spans if s.partition == number), key=lambda s: s.first_at)
    found = [(s.first_at, now if live and holder and s.run_id == holder.run_id else s.last_at)
             for s in own]  # fmt: skip
    if live and holder is not None and not any(s.run_id == holder.run_id for s in own):
        found.append((holder.acquired_at or now, now))
    if not own and part.first_start is not None:
        found.append((part.first_start, now if live else (part.last_end or part.first_start)))
    elif own and part.first_start is not None and part.first_start < own[0].first_at:
        # Results older than the first sample: runs of a version that kept none.
        found.append((part.first_start, min(own[0].first_at, part.last_end or own[0].first_at)))
    if not (live and part.remaining) and part.last_end is not None:
        # Idle after its last result (done, or a run waiting with --when-done idle).
        found = [(a, min(b, part.last_end)) for a, b in found]
    return [(a, b) for a, b in found if b > a]


def _seconds_in(intervals: Sequence[tuple[datetime, datetime]], since: datetime | None) -> float:
    """Seconds the intervals cover (overlaps once), only from ``since`` when given."""
    clipped = sorted((max(a, since) if since else a, b) for a, b in intervals)
    total = 0.0
    end: datetime | None = None
    for a, b in clipped:
        start = a if end is None else max(a, end)
        if b > start:
            total += (b - start).total_seconds()
        end = b if end is None else max(end, b)
    return total


def _with_rates(
    part: PartitionStatus,
    spans: Sequence[RunSpan],
    holder: LeaseHolder | None,
    now: datetime,
) -> PartitionStatus:
    number = part.partition or 0
    intervals = _intervals(number, spans, holder, part, now)
    active = _seconds_in(intervals, None)
    in_window = _seconds_in(intervals, now - timedelta(seconds=part.window))
    overall = part.collected * _DAY / active if active > 0 and part.collected else None
    recent = part.recent * _DAY / in_window if in_window > 0 and part.recent else 0.0
    return replace(
        part,
        active_seconds=active,
        per_day_overall=overall,
        per_day_last_hour=recent,
        running=holder is not None,
        holder=holder,
    )


def _plan_notes(*, planned: bool, unplaced: int) -> list[str]:
    """What the plan leaves out of the figures: no plan yet, or users outside it."""
    if not planned:
        return ["no partition plan yet: totals only count users against the users table"]
    if unplaced:
        said = (
            f"{unplaced} users are outside the partition plan and no run collects them: "
            "run 'friendscrape partitions place' to add them to the plan"
        )
        return [said]
    return []


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
    leases: Mapping[int, LeaseHolder] | None = None,
    spans: Sequence[RunSpan] = (),
    sources: Sequence[tuple[str, int]] = (),
) -> StatusReport:
    """Combine the plan with the store's aggregates into per-partition and total figures.

    ``unplaced`` users (imported after the plan) count in the total's users and
    remaining, so a job with users no run will collect never shows as done.

    A partition runs while a run holds a live lease on it (``leases``: the stored ones,
    live or lapsed); one that does not has no ETA (nobody collects it). A running
    partition with no rate of its own yet gets the mean per-worker rate, marked as
    estimated. The job's ETA is its users left at the running partitions' summed rate;
    ``JobFacts.eta_all_seconds`` is the one as if every partition with users left ran.
    ``samples`` (each partition's newest run sample), ``buckets`` (run samples summed
    in the window) and ``spans`` (each run's first and last sample) add what the runs
    met and when they ran; ``sources`` (results per source) names the platform.
    """
    grouped: dict[int, list[StatusSummary]] = {}
    for row in summaries:
        grouped.setdefault(row.partition, []).append(row)
    facts = _run_facts(samples or {}, buckets)
    live = {n: h for n, h in (leases or {}).items() if not h.gone(now)}
    planned_users = {p.number: p.user_count for p in plan}
    numbers = sorted(set(planned_users) | set(grouped))
    parts: list[PartitionStatus] = []
    for number in numbers:
        rows = grouped.get(number, [])
        collected = sum(r.users for r in rows)
        part = _combine(number, planned_users.get(number, collected), rows, window=window, now=now)
        part = _with_rates(part, spans, live.get(number), now)
        parts.append(replace(part, run=facts.get(number)))
    worker = _per_worker(parts)
    with_eta = [_partition_eta(p, worker) for p in parts]
    all_rows = [r for rows in grouped.values() for r in rows]
    total_users = sum(planned_users.values()) + unplaced if plan else (user_count or 0)
    total = _combine(None, total_users, all_rows, window=window, now=now)
    collecting = [p for p in with_eta if p.collecting]
    total = replace(
        total,
        run=_total_facts(list(facts.values())),
        active_seconds=sum(p.active_seconds for p in with_eta),
        per_day_overall=_sum_rates(collecting, worker),
        per_day_last_hour=sum(p.per_day_last_hour for p in collecting),
        running=bool(collecting),
    )
    total_eta = _eta(total.remaining, total.rate)
    estimated = any(p.eta_estimated for p in collecting) and bool(total.remaining)
    notes = _plan_notes(planned=bool(plan), unplaced=unplaced) + _simulator_notes(with_eta)
    job = _job_facts(
        with_eta,
        total=total,
        worker=worker,
        unplaced=unplaced,
        spans=spans,
        live=live,
        sources=sources,
    )
    return StatusReport(
        generated_at=now,
        partitions=tuple(with_eta),
        total=replace(total, eta_seconds=total_eta, eta_estimated=estimated),
        planned=bool(plan),
        notes=tuple(notes),
        unplaced=unplaced if plan else 0,
        facts=job,
    )


def _partition_eta(p: PartitionStatus, worker: float | None) -> PartitionStatus:
    """Users left at the partition's own rate while it runs; none while it does not."""
    if p.remaining == 0:
        return replace(p, eta_seconds=0.0)
    if not p.running:
        return replace(p, eta_seconds=None)
    borrowed = not p.rate and worker is not None
    return replace(p, eta_seconds=_eta(p.remaining, p.rate or worker), eta_estimated=borrowed)


def _sum_rates(collecting: Sequence[PartitionStatus], worker: float | None) -> float | None:
    """The running workers' summed rate (one with none of its own counts at ``worker``)."""
    rates = [p.rate or worker for p in collecting]
    known = [r for r in rates if r]
    return sum(known) if known else None


def _platform(sources: Sequence[tuple[str, int]]) -> str:
    """The results' source: the one that holds 99% of them or more, else ``mixed``."""
    named = [(s, n) for s, n in sources if s]
    if not named:
        return ""
    top, most = max(named, key=lambda item: item[1])
    return top if most >= 0.99 * sum(n for _, n in named) else "mixed"


def _job_facts(
    parts: Sequence[PartitionStatus],
    *,
    total: PartitionStatus,
    worker: float | None,
    unplaced: int,
    spans: Sequence[RunSpan],
    live: Mapping[int, LeaseHolder],
    sources: Sequence[tuple[str, int]],
) -> JobFacts:
    """The platform, the runs seen and the ETA as if each pending partition ran."""
    left = [p for p in parts if p.remaining]
    etas = [_eta(p.remaining, p.rate or worker) for p in left]
    if unplaced:
        etas.append(_eta(unplaced, worker))  # as if placed now, one more worker's share
    eta_all: float | None = 0.0 if total.remaining == 0 else None
    if total.remaining and etas and all(e is not None for e in etas):
        eta_all = max(e or 0.0 for e in etas)
    runs = {s.run_id for s in spans} | {h.run_id for h in live.values()}
    return JobFacts(
        platform=_platform(sources),
        workers_seen=len(runs),
        workers_running=sum(1 for p in parts if p.collecting),
        workers_needed=len(left) + (1 if unplaced else 0),
        eta_all_seconds=eta_all,
        eta_all_estimated=bool(total.remaining)
        and (any(not p.rate for p in left) or bool(unplaced)),
        simulated=any(p.run is not None and p.run.simulated for p in parts),
    )


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
    leases = await store.leases() if plan else {}
    spans = await store.run_spans()
    # The job's recorded platform names it; only a store of an older version, with none
    # recorded, is read for its results' sources.
    recorded = await store.job_platform()
    sources = [(recorded, 1)] if recorded is not None else await store.source_counts()
    cut = await store.plan_cut() if plan else None
    report = build_report(
        plan,
        summaries,
        now=moment,
        window=window,
        user_count=user_count,
        unplaced=unplaced,
        samples=samples,
        buckets=buckets,
        leases=leases,
        spans=spans,
        sources=sources,
    )
    return replace(report, plan_cut=cut)


def shown_store(url: str) -> str:
    """A store URL as status and report show it: scheme, host and path only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path


async def read_status(settings: Settings, *, window: float = DEFAULT_WINDOW) -> StatusReport:
    """Open the settings' store read-only and build its report (the reads made again
    while one fails transiently: they change nothing)."""
    async with opened_store(store_config(settings), read_only=True) as store:
        report = await retried(
            store_retry_policy(settings), "status", lambda: gather_status(store, window=window)
        )
        notes = await waves.wave_notes(store)
    return replace(report, store=shown_store(settings.store), notes=(*report.notes, *notes))
