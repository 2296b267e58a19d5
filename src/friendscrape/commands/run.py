"""The `run` command: collect one partition under signal handling, holding its lease."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext

import structlog

from friendscrape.commands.plan import check_partition
from friendscrape.config import Settings
from friendscrape.core.counters import RunCounters
from friendscrape.core.lease import LeaseConfig, held_partition
from friendscrape.core.pipeline import PartitionRun, RunSummary
from friendscrape.errors import PartitionHeldError, PauseTooLongError, RunAbortedError, StoreError
from friendscrape.fetch.http import Limiter
from friendscrape.fetch.limiter import build_limiter
from friendscrape.sources import make_source
from friendscrape.sources.twitter_mobile import LEGACY_SITE_NOTICE
from friendscrape.stores import opened_store
from friendscrape.stores.base import Store
from friendscrape.worker import idle_forever, resolve_partition

log = structlog.get_logger("friendscrape")


async def _warn_unplaced(store: Store) -> None:
    """Users imported after the plan belong to no partition: no run collects them."""
    unplaced = await store.unplaced_count()
    if unplaced:
        advice = "run 'friendscrape partitions place' to add them to the plan"
        log.warning("run.unplaced_users", users=unplaced, advice=advice)
        sys.stderr.write(
            f"friendscrape: warning: {unplaced} users are outside the partition plan and "
            f"no run collects them: {advice}\n"
        )


async def _left_pending(store: Store, partition: int, exc: RunAbortedError) -> str:
    """``; N users left pending`` after a pause too long (the restart that resumes them
    should be later, not at once), else nothing; a store too slow to say is not waited."""
    if not isinstance(exc, PauseTooLongError):
        return ""
    try:
        async with asyncio.timeout(5):
            left = await store.pending_count(partition, retry_failed=False)
    except (StoreError, TimeoutError):
        return ""
    return f"; {left} users left pending"


async def run(
    settings: Settings,
    partition: str,
    *,
    when_done: str = "exit",
    environ: Mapping[str, str] | None = None,
    limiter: Limiter | None = None,
    hard_exit: bool = True,
    progress: Callable[[PartitionRun], AbstractAsyncContextManager[None]] | None = None,
) -> RunSummary:
    """Collect one partition under signal handling (the `run` command).

    The first SIGTERM/SIGINT stops intake and flushes; a second exits at once (SQLite and
    BigQuery writes are atomic per chunk, so nothing saved is lost). When saving fails for
    good the process exits non-zero straight away: a hung store call may hold a thread
    that would otherwise keep the interpreter from exiting.
    """
    number = resolve_partition(partition, os.environ if environ is None else environ)
    source = make_source(settings)
    if source.name == "twitter-mobile" and not settings.base_url:
        # Its default host no longer exists: say why every user is about to fail.
        log.warning("source.legacy_site", note=LEGACY_SITE_NOTICE)
        sys.stderr.write(f"friendscrape: warning: {LEGACY_SITE_NOTICE}\n")
        sys.stderr.flush()
    run_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(partition=number, run_id=run_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals_seen: list[str] = []
    overrun: list[asyncio.TimerHandle] = []

    def on_signal(sig: signal.Signals) -> None:
        signals_seen.append(sig.name)
        if len(signals_seen) == 1:
            log.info("run.signal", signal=sig.name, action="stop taking users; flush results")
            stop.set()
            # The pipeline ends its own stop inside this budget; this is the backstop for
            # anything else (closing the store, releasing the lease, the threads a hung
            # store call holds), so the platform's kill never comes first.
            overrun.append(loop.call_later(settings.stop_timeout, on_stop_overrun))
            return
        log.warning("run.signal", signal=sig.name, action="second signal: exiting now")
        sys.stdout.flush()
        os._exit(128 + sig.value)

    def on_stop_overrun() -> None:
        log.error("run.stop_overrun", stop_timeout=settings.stop_timeout)
        sys.stdout.flush()
        sys.stderr.write(
            f"friendscrape: error: the stop took over {settings.stop_timeout:g}s "
            "(FRIENDSCRAPE_STOP_TIMEOUT); users not saved yet stay pending\n"
        )
        sys.stderr.flush()
        os._exit(RunAbortedError.exit_code)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        lease_config = LeaseConfig.from_settings(settings)
        async with (
            opened_store(settings) as store,
            # Held before any user is read: a second run of this partition exits 6.
            held_partition(store, number, run_id, lease_config, on_lost=stop.set) as lease,
        ):
            await check_partition(store, number)
            await _warn_unplaced(store)
            # One RunCounters for the run and its limiter, so progress shows paused hosts.
            stats = RunCounters()
            runner = PartitionRun(
                settings,
                store,
                source,
                partition=number,
                stop=stop,
                limiter=limiter if limiter is not None else build_limiter(settings, stats),
                stats=stats,
            )
            # ``progress``: e.g. the live bar of an interactive run (progressbar.LiveLine.around)
            display = progress(runner) if progress is not None else nullcontext()
            try:
                async with display:
                    summary = await runner.run()
                if lease.lost is not None:
                    msg = f"partition {number}: stopped after losing its lease ({lease.lost})"
                    raise PartitionHeldError(msg)
            except RunAbortedError as exc:
                log.error(
                    "run.aborted", error=str(exc), cause=type(exc).__name__, exit_code=exc.exit_code
                )
                if hard_exit:
                    sys.stdout.flush()
                    left = await _left_pending(store, number, exc)
                    sys.stderr.write(f"friendscrape: error: {exc}{left}\n")
                    sys.stderr.flush()
                    os._exit(exc.exit_code)
                raise
            complete = await store.pending_count(number, retry_failed=False) == 0
        if complete:
            log.info("partition.complete", users_collected=summary.users)
            if when_done == "idle" and not stop.is_set():
                await idle_forever(stop)
        return summary
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        # A process run keeps the backstop armed: closing the loop after this returns
        # still waits for store threads. Called in-process, the caller lives on.
        if not hard_exit:
            for handle in overrun:
                handle.cancel()
