"""The `run` command: collect one partition, holding its lease, until done or stopped;
or (``--partition next``) claim partitions one after another until none is left.

An interactive run's live progress bar is drawn by ``progressbar``, beside it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from dataclasses import dataclass, replace

import structlog

from friendscrape.commands import job
from friendscrape.commands.plan import check_partition, check_plan, warn_if_cap_differs
from friendscrape.config import Settings
from friendscrape.configparts import source_config, store_config, store_retry_policy
from friendscrape.core.assemble import WorkerFetch, build_run, lease_config, worker_fetch
from friendscrape.core.claim import ClaimConfig, claim_ahead, claim_next, keep_ahead
from friendscrape.core.counters import RunCounters
from friendscrape.core.lease import LeaseState, held_lease, held_partition
from friendscrape.core.pace import ClaimPace
from friendscrape.core.pipeline import Handover, PartitionRun, RunSummary, combined
from friendscrape.core.samples import SampleRecorder, Upstream, sampling
from friendscrape.errors import PartitionHeldError, PauseTooLongError, RunAbortedError, StoreError
from friendscrape.fetch.http import Limiter
from friendscrape.platforms import PAGE_SIZES
from friendscrape.retry import RetryPolicy
from friendscrape.sources import make_source
from friendscrape.sources.base import Source
from friendscrape.sources.twitter_mobile import LEGACY_SITE_NOTICE
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import Lease, PlanReads, PlanStore, RunStore, Store
from friendscrape.worker import NEXT, idle_forever, resolve_partition

log = structlog.get_logger("friendscrape")


def _no_warning(_text: str) -> None:
    """Warnings are logged in any case; a caller that shows them to people passes ``warn``."""


async def _warn_unplaced(store: PlanReads, warn: Callable[[str], None]) -> None:
    """Users imported after the plan belong to no partition: no run collects them."""
    unplaced = await store.unplaced_count()
    if unplaced:
        advice = "run 'friendscrape partitions place' to add them to the plan"
        log.warning("run.unplaced_users", users=unplaced, advice=advice)
        warn(f"{unplaced} users are outside the partition plan and no run collects them: {advice}")


async def _count_left(store: RunStore, partition: int, exc: RunAbortedError) -> None:
    """After a pause too long, record on the error how many users stay pending (the
    restart that resumes them should be later, not at once); a store too slow to say is
    not waited for."""
    if not isinstance(exc, PauseTooLongError):
        return
    try:
        async with asyncio.timeout(5):
            exc.users_left = await store.pending_count(partition, retry_failed=False)
    except (StoreError, TimeoutError):
        return


@dataclass(frozen=True, slots=True)
class _Worker:
    """What each partition's collection in one process shares."""

    settings: Settings
    run_id: str
    stop: asyncio.Event
    source: Source
    limiter: Limiter | None
    progress: Callable[[PartitionRun], AbstractAsyncContextManager[None]] | None
    on_abort: Callable[[RunAbortedError], None] | None
    shared: WorkerFetch | None = None  # --partition next: one limiter and session throughout


async def _collect(
    worker: _Worker,
    store: Store,
    number: int,
    lease: LeaseState,
    *,
    fed: asyncio.Event | None = None,
    handover: Handover | None = None,
    stats: RunCounters | None = None,
    pending: int | None = None,
) -> RunSummary:
    """Collect partition ``number``, its lease held, until done or stopped (``fed``: set
    once every pending user was handed to a fetcher; ``handover``: see Handover;
    ``stats``: the run's counters, read by the worker's claims while it runs;
    ``pending``: its pending users as its claim read them, not counted again)."""
    settings, stop = worker.settings, worker.stop
    runner = build_run(
        settings,
        store,
        number,
        stop=stop,
        source=worker.source,
        limiter=worker.limiter,
        shared=worker.shared,
        fed=fed,
        handover=handover,
        stats=stats,
        pending=pending,
    )
    # ``progress``: e.g. the live bar of an interactive run (LiveLine.around)
    display = worker.progress(runner) if worker.progress is not None else nullcontext()
    recorder = SampleRecorder(
        store,
        runner.sample_figures,
        run_id=worker.run_id,
        partition=number,
        source=worker.source.name,
        upstream=Upstream.of(settings.base_url or getattr(worker.source, "base_url", None)),
    )
    try:
        every = settings.lease_heartbeat
        async with display, sampling(recorder, every=every, deadline=runner.stop_deadline):
            summary = await runner.run()
        if lease.lost is not None:
            msg = f"partition {number}: stopped after losing its lease ({lease.lost})"
            raise PartitionHeldError(msg)
    except RunAbortedError as exc:
        log.error("run.aborted", error=str(exc), cause=type(exc).__name__, exit_code=exc.exit_code)
        await _count_left(store, number, exc)
        if worker.on_abort is not None:
            worker.on_abort(exc)
        raise
    return summary


async def _weighing(store: PlanStore, platform: str, policy: RetryPolicy) -> int | None:
    """The page size partitions are weighed by for ``--partition next`` (their expected
    pages), or None (their users) when the platform has none or no user's following
    count is known: every user then weighs the median of none, one, and a worker's
    progress counted in pages against partitions weighed in users made a worker three
    times slower look five times faster than it was."""
    page_size = PAGE_SIZES.get(platform)
    if page_size is None:
        return None
    known = await retried(policy, "following_counts_known", store.following_counts_known)
    return page_size if known else None


async def _collect_next(worker: _Worker, store: Store, warn: Callable[[str], None]) -> RunSummary:
    """``--partition next``: claim, collect, claim again until no partition is left."""
    settings = worker.settings
    await check_plan(store)
    await _warn_unplaced(store, warn)
    page_size = await _weighing(store, worker.source.name, store_retry_policy(settings))
    claims = ClaimConfig(
        lease=lease_config(settings),
        retry_failed=settings.retry_failed,
        page_size=page_size,
        max_friends=settings.max_friends,
    )
    async with worker_fetch(settings, worker.source, worker.limiter) as shared:
        return await _claim_and_collect(replace(worker, shared=shared), store, claims)


@dataclass(slots=True)
class _Claimed:
    """One claimed partition under way: its lease held, its collection running."""

    partition: int
    near: asyncio.Event  # its last users about to be fed: the worker claims its next
    fed: asyncio.Event  # every pending user handed to a fetcher (or its run ended)
    task: asyncio.Task[int]  # the users its run left pending
    given_back: asyncio.Event | None = None  # claimed ahead, then left to the others


async def _hold_and_collect(
    worker: _Worker,
    store: Store,
    claims: ClaimConfig,
    lease: Lease,
    *,
    fed: asyncio.Event,
    handover: Handover,
    stats: RunCounters,
    pending: int | None,
) -> tuple[RunSummary, int]:
    """Collect ``lease``'s partition, holding the lease: its summary and the users it
    left pending (run in a task of its own, so its log context names its partition)."""
    structlog.contextvars.bind_contextvars(partition=lease.partition)
    async with held_lease(store, lease, claims.lease, on_lost=worker.stop.set) as state:
        summary = await _collect(
            worker,
            store,
            lease.partition,
            state,
            fed=fed,
            handover=handover,
            stats=stats,
            pending=pending,
        )
        if handover.given_back is not None and handover.given_back.is_set():
            return summary, pending or 0  # nothing fed: released untouched, no count
        left = await store.pending_count(lease.partition, retry_failed=claims.retry_failed)
    if not left:
        log.info("partition.complete", users=summary.users, pages=summary.pages)
    return summary, left


class _Claims:
    """A worker's claimed partitions under way, at most two: the one whose users are
    being fed, and the one before it while its last users are fed and in flight
    (claim-ahead), so the worker's fetchers never wait for a claim or a partition's tail."""

    def __init__(self, worker: _Worker, store: Store, claims: ClaimConfig) -> None:
        self._worker, self._store, self._claims = worker, store, claims
        self.done: list[RunSummary] = []
        self.running: list[_Claimed] = []
        self.pace = ClaimPace()
        self._summaries: dict[int, RunSummary] = {}
        self._gates: set[asyncio.Task[None]] = set()  # keep_ahead of partitions claimed ahead

    def start(self, lease: Lease) -> _Claimed:
        """Collect ``lease``'s partition in a task of its own: it reads its first users
        at once, and feeds them once the partition before it (if any) is fed and the
        leave rule, made again then (``keep_ahead``), keeps it."""
        before = [c for c in self.running if not c.fed.is_set()]
        handover = Handover(asyncio.Event(), self.pace.lead_seconds)
        if before:
            go, back = asyncio.Event(), asyncio.Event()
            handover = replace(handover, go=go, given_back=back)
            gate = self._gate(lease.partition, before[-1], go, back)
            gating = asyncio.create_task(gate, name=f"gate-{lease.partition}")
            self._gates.add(gating)
            gating.add_done_callback(functools.partial(self._gate_ended, lease.partition))
        fed, stats = asyncio.Event(), RunCounters()
        pending = self.pace.pending_users.get(lease.partition)  # as its claim read them
        task = asyncio.create_task(
            self._collect(lease, fed, handover, stats, pending), name=f"partition-{lease.partition}"
        )
        # A run that ended unfed (stopped, failed) lets the next one feed all the same.
        task.add_done_callback(lambda _task: fed.set())
        claimed = _Claimed(lease.partition, handover.near, fed, task, handover.given_back)
        self.running.append(claimed)
        self.pace.begun(lease.partition, self._fetched(stats))
        return claimed

    async def _gate(
        self, partition: int, before: _Claimed, go: asyncio.Event, back: asyncio.Event
    ) -> None:
        """Set ``go`` for ``partition``, claimed ahead of ``before``, once ``before`` is
        fed (or ended); ``back`` first when the leave rule, made again, gives it back.
        A worker that may be slower than the others (``Verdict.slower``) makes it again
        every claim's seconds (at least a second) until then, and once ``before`` is fed:
        given back early, the partition joins the others' share while they are still
        at work (given back at the hand-over, a fast worker took it as the rest ended,
        and the fleet ended one such partition late)."""
        try:
            while not self._worker.stop.is_set():
                verdict = self.pace.verdict
                if verdict is not None and not verdict.slower():
                    return
                if not before.fed.is_set():
                    with suppress(TimeoutError):
                        async with asyncio.timeout(max(self.pace.lead_seconds() / 2, 1.0)):
                            await before.fed.wait()
                draining = not before.fed.is_set()
                if not await self._keep(partition, draining=draining):
                    back.set()
                    return
                if not draining:
                    return
        except StoreError as exc:
            # The verdict stands as made at the claim: the partition starts.
            log.warning("claim.recheck_failed", partition=partition, error=str(exc))
        finally:
            go.set()

    def _gate_ended(self, partition: int, task: asyncio.Task[None]) -> None:
        """A gate that ended is let go (a worker of 1,000 partitions kept each one until
        it stopped); one that failed other than on the store (which ``_gate`` logs) is a
        fault of friendscrape's, logged here: its partition has started all the same."""
        self._gates.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error(
                "claim.recheck_failed",
                partition=partition,
                error=str(exc),
                cause=type(exc).__name__,
            )

    async def _keep(self, partition: int, *, draining: bool) -> bool:
        """``keep_ahead`` for ``partition``, the worker's other partitions held."""
        held = frozenset(c.partition for c in self.running if c.partition != partition)
        return await keep_ahead(
            self._store,
            self._worker.run_id,
            self._claims,
            partition,
            held=held,
            pace=self.pace,
            draining=draining,
        )

    def _fetched(self, stats: RunCounters) -> Callable[[], float]:
        """The work a partition's run fetched so far, in its weights' unit: a user's
        expected pages are its list's pages plus one (its users, with no page size)."""
        if self._claims.page_size is None:
            return lambda: float(stats.users_done)
        return lambda: float(stats.pages + stats.users_done)

    async def _collect(
        self,
        lease: Lease,
        fed: asyncio.Event,
        handover: Handover,
        stats: RunCounters,
        pending: int | None,
    ) -> int:
        summary, left = await _hold_and_collect(
            self._worker,
            self._store,
            self._claims,
            lease,
            fed=fed,
            handover=handover,
            stats=stats,
            pending=pending,
        )
        self._summaries[lease.partition] = summary
        return left

    async def near_or_done(self, current: _Claimed) -> bool:
        """Wait until ``current``'s last users are about to be fed (``Handover.near``) or
        its run ended, finishing the partition before it meanwhile; False when claiming
        must stop."""
        near = asyncio.ensure_future(current.near.wait())
        try:
            while not (near.done() or current.task.done()):
                waits = {near, *(c.task for c in self.running)}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for ended in [c for c in self.running if c is not current and c.task.done()]:
                    if not await self.finish(ended):
                        return False
        finally:
            near.cancel()
        return True

    async def finish_others(self, current: _Claimed) -> bool:
        """Wait for the partitions before ``current`` to end (never more than two held:
        a partition claimed ahead waits for the one before it); False when claiming
        must stop."""
        for other in [c for c in self.running if c is not current]:
            if not await self.finish(other):
                return False
        return True

    async def finish(self, claimed: _Claimed) -> bool:
        """Wait for ``claimed``'s run to end; False when claiming must stop."""
        left = await claimed.task
        self.running.remove(claimed)
        if claimed.given_back is not None and claimed.given_back.is_set():
            # Nothing of it fetched: neither a partition of its pace nor of the run's.
            self._summaries.pop(claimed.partition, None)
            self.pace.dropped(claimed.partition)
            return not self._worker.stop.is_set()
        self.done.append(self._summaries.pop(claimed.partition))
        self.pace.finished(self.done[-1].seconds, claimed.partition)
        if left and not self._worker.stop.is_set():
            # The run ended with users pending (e.g. --users-limit): claiming on would
            # take the same partition again and again.
            log.warning("claim.stopped", partition=claimed.partition, users_left=left)
            return False
        return not self._worker.stop.is_set()

    async def close(self) -> None:
        """Let every partition still under way end (stopped when claiming ended early:
        intake stops, in-flight users get the grace period, every result is saved)."""
        if any(not c.task.done() for c in self.running):
            self._worker.stop.set()
        gates = list(self._gates)  # those still at work: each ended one let itself go
        for gate in gates:
            gate.cancel()  # its partition then starts, and sees the stop
        await asyncio.gather(*gates, return_exceptions=True)
        ended = await asyncio.gather(*(c.task for c in self.running), return_exceptions=True)
        for claimed, outcome in zip(list(self.running), ended, strict=True):
            self.running.remove(claimed)
            if claimed.partition in self._summaries:
                self.done.append(self._summaries.pop(claimed.partition))
            if isinstance(outcome, BaseException):
                raise outcome


async def _claim_and_collect(worker: _Worker, store: Store, claims: ClaimConfig) -> RunSummary:
    """Claim and collect partitions until none is left or the worker is stopped. Once a
    partition's last users are about to be fed (``Handover``: within the seconds a claim
    and the new partition's first read take), the next free one is claimed and its
    first users read, then fed as the last of the one before are (claim-ahead), both
    leases renewed, so the worker holds two partitions briefly. A
    worker far slower than the others leaves them the last ones (``ClaimPace``)."""
    stop = worker.stop
    under = _Claims(worker, store, claims)
    try:
        lease = await claim_next(store, worker.run_id, claims, stop, under.pace)
        while lease is not None:
            current = under.start(lease)
            if not await under.near_or_done(current) or not await under.finish_others(current):
                break
            lease = None
            if current.near.is_set() and not current.task.done() and not stop.is_set():
                held = frozenset(c.partition for c in under.running)
                lease = await claim_ahead(store, worker.run_id, claims, held, under.pace)
            if lease is None:
                if not await under.finish(current):
                    break
                lease = await claim_next(store, worker.run_id, claims, stop, under.pace)
    finally:
        await under.close()
    return combined(under.done, stopped=stop.is_set())


async def run(
    settings: Settings,
    partition: str,
    *,
    stop: asyncio.Event | None = None,
    when_done: str = "exit",
    environ: Mapping[str, str] | None = None,
    limiter: Limiter | None = None,
    progress: Callable[[PartitionRun], AbstractAsyncContextManager[None]] | None = None,
    warn: Callable[[str], None] = _no_warning,
    on_abort: Callable[[RunAbortedError], None] | None = None,
) -> RunSummary:
    """Collect one partition (the `run` command) until it is done or ``stop`` is set;
    with ``partition`` ``next``, claim partitions one after another until none is left.

    Setting ``stop`` stops intake and flushes what was collected. A run that must end
    raises a RunAbortedError; ``on_abort`` is first called with it while the store is
    still open, before the lease and the store are given up: a hung store call can keep
    that from ever ending, so a process that must exit exits there (the CLI does).
    ``warn``: one line for people per warning (they are logged in any case).
    """
    stop = stop if stop is not None else asyncio.Event()
    claiming = partition == NEXT
    number = (
        0 if claiming else resolve_partition(partition, os.environ if environ is None else environ)
    )
    run_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(run_id=run_id)
    if not claiming:
        structlog.contextvars.bind_contextvars(partition=number)
    hold = lease_config(settings)
    async with opened_store(store_config(settings)) as store:
        # The job's platform, before the lease: a run told another one exits 2 at once.
        platform = await retried(
            store_retry_policy(settings),
            "read job",
            lambda: job.settle_for_run(store, settings.source),
        )
        source = make_source(source_config(settings, platform))
        if source.name == "twitter-mobile" and not settings.base_url:
            # Its default host no longer exists: say why every user is about to fail.
            log.warning("source.legacy_site", note=LEGACY_SITE_NOTICE)
            warn(LEGACY_SITE_NOTICE)
        # Once a worker, not a claim: the plan's record is read here alone.
        await retried(
            store_retry_policy(settings),
            "read job",
            lambda: warn_if_cap_differs(store, settings.max_friends),
        )
        worker = _Worker(settings, run_id, stop, source, limiter, progress, on_abort)
        if claiming:
            summary = await _collect_next(worker, store, warn)
            complete = not stop.is_set()
        else:
            # Held before any user is read: a second run of this partition exits 6.
            async with held_partition(store, number, run_id, hold, on_lost=stop.set) as lease:
                await check_partition(store, number)
                await _warn_unplaced(store, warn)
                summary = await _collect(worker, store, number, lease)
                complete = await store.pending_count(number, retry_failed=False) == 0
            if complete:
                log.info("partition.complete", users_collected=summary.users, pages=summary.pages)
    if complete and when_done == "idle" and not stop.is_set():
        await idle_forever(stop)
    # A stop that came once every user was saved left nothing undone.
    return replace(summary, stopped=False) if complete else summary
