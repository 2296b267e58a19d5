"""The `run` command: collect one partition, holding its lease, until done or stopped;
or (``--partition next``) claim partitions one after another until none is left.

An interactive run's live progress bar is drawn by ``progressbar``, beside it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace

import structlog

from friendscrape.commands import job
from friendscrape.commands.plan import check_partition, check_plan
from friendscrape.config import Settings
from friendscrape.configparts import source_config, store_config, store_retry_policy
from friendscrape.core.assemble import WorkerFetch, build_run, lease_config, worker_fetch
from friendscrape.core.claim import ClaimConfig, claim_next
from friendscrape.core.lease import LeaseState, held_lease, held_partition
from friendscrape.core.pipeline import PartitionRun, RunSummary, combined
from friendscrape.core.samples import SampleRecorder, Upstream, sampling
from friendscrape.errors import PartitionHeldError, PauseTooLongError, RunAbortedError, StoreError
from friendscrape.fetch.http import Limiter
from friendscrape.sources import make_source
from friendscrape.sources.base import Source
from friendscrape.sources.twitter_mobile import LEGACY_SITE_NOTICE
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import PlanReads, RunStore, Store
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


async def _collect(worker: _Worker, store: Store, number: int, lease: LeaseState) -> RunSummary:
    """Collect partition ``number``, its lease held, until done or stopped."""
    settings, stop = worker.settings, worker.stop
    runner = build_run(
        settings,
        store,
        number,
        stop=stop,
        source=worker.source,
        limiter=worker.limiter,
        shared=worker.shared,
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


async def _collect_next(worker: _Worker, store: Store, warn: Callable[[str], None]) -> RunSummary:
    """``--partition next``: claim, collect, claim again until no partition is left."""
    settings = worker.settings
    await check_plan(store)
    await _warn_unplaced(store, warn)
    claims = ClaimConfig(lease=lease_config(settings), retry_failed=settings.retry_failed)
    async with worker_fetch(settings, worker.source, worker.limiter) as shared:
        return await _claim_and_collect(replace(worker, shared=shared), store, claims)


async def _claim_and_collect(worker: _Worker, store: Store, claims: ClaimConfig) -> RunSummary:
    """Claim and collect partitions until none is left or the worker is stopped."""
    settings, stop = worker.settings, worker.stop
    done: list[RunSummary] = []
    while not stop.is_set():
        lease = await claim_next(store, worker.run_id, claims, stop)
        if lease is None:
            break
        structlog.contextvars.bind_contextvars(partition=lease.partition)
        async with held_lease(store, lease, claims.lease, on_lost=stop.set) as state:
            done.append(await _collect(worker, store, lease.partition, state))
            left = await store.pending_count(lease.partition, retry_failed=settings.retry_failed)
        structlog.contextvars.unbind_contextvars("partition")
        if left and not stop.is_set():
            # The run ended with users pending (e.g. --users-limit): claiming on would
            # take the same partition again and again.
            log.warning("claim.stopped", partition=lease.partition, users_left=left)
            break
        if not left:
            log.info(
                "partition.complete",
                partition=lease.partition,
                users=done[-1].users,
                pages=done[-1].pages,
            )
    return combined(done, stopped=stop.is_set())


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
    return summary
