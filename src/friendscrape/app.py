"""The commands' work, given Settings: import, plan, run, export. No argument parsing here."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

import structlog

from friendscrape.config import Settings
from friendscrape.errors import (
    PartitionHeldError,
    PauseTooLongError,
    PlanError,
    RunAbortedError,
    StoreError,
    UsageError,
)
from friendscrape.exporter import export
from friendscrape.fetch.http import Limiter
from friendscrape.fetch.limiter import build_limiter
from friendscrape.importer import ImportReport, read_users
from friendscrape.lease import LeaseConfig, held_partition
from friendscrape.models import Partition
from friendscrape.pipeline import PartitionRun, RunSummary
from friendscrape.platform import idle_forever, resolve_partition
from friendscrape.sources import make_source
from friendscrape.sources.twitter_mobile import LEGACY_SITE_NOTICE
from friendscrape.stats import RunStats
from friendscrape.stores import open_store
from friendscrape.stores.base import ImportResult, Store

log = structlog.get_logger("friendscrape")


@asynccontextmanager
async def opened_store(
    settings: Settings, *, create: bool = False, read_only: bool = False
) -> AsyncIterator[Store]:
    """The settings' store, opened, and closed however the block ends (``create``: a new
    SQLite file may be started, as importing users does; ``read_only``: nothing in the
    store is created or changed, for commands that only read)."""
    store = open_store(settings, create=create, read_only=read_only)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def import_users(settings: Settings, path: Path) -> tuple[ImportReport, ImportResult]:
    """Import a CSV of users; valid rows are saved even when others are bad."""
    report = ImportReport()
    added = updated = 0
    async with opened_store(settings, create=True) as store:
        for chunk in read_users(path, report):
            result = await store.import_users(chunk)
            added += result.added
            updated += result.updated
    return report, ImportResult(read=report.rows, added=added, updated=updated)


async def plan(settings: Settings, count: int, *, force: bool) -> list[Partition]:
    """Split users into ``count`` partitions; refuses to move users once results exist."""
    if count < 1:
        msg = f"--count must be at least 1, got {count}"
        raise UsageError(msg)
    async with opened_store(settings) as store:
        await _require_users(store)
        results = await store.result_count()
        if results and not force:
            msg = (
                f"{results} users already have results; re-planning moves users between "
                "partitions: pass --force to replace the plan anyway"
            )
            raise PlanError(msg)
        return await store.plan_partitions(count)


async def show_plan(settings: Settings) -> list[Partition]:
    """The stored plan."""
    async with opened_store(settings, read_only=True) as store:
        return await _require_plan(store)


async def place_users(settings: Settings) -> tuple[dict[int, int], list[Partition]]:
    """Put users imported after the plan into its partitions, moving no placed user
    (the `partitions place` command); returns users placed per partition and the plan."""
    async with opened_store(settings) as store:
        await _require_users(store)
        await _require_plan(store)
        placed = await store.place_unplaced()
        log.info("plan.placed", users=sum(placed.values()), partitions=placed)
        return placed, await store.partitions()


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


async def _require_users(store: Store) -> None:
    if await store.user_count() == 0:
        msg = "no users in the store: import them first with 'friendscrape users import FILE'"
        raise PlanError(msg)


async def _require_plan(store: Store) -> list[Partition]:
    parts = await store.partitions()
    if not parts:
        msg = "no partition plan yet: run 'friendscrape partitions plan --count N' first"
        raise PlanError(msg)
    return parts


async def check_partition(store: Store, number: int) -> Partition:
    """The plan's partition ``number``, or a PlanError saying what is wrong."""
    await _require_users(store)
    parts = await _require_plan(store)
    for part in parts:
        if part.number == number:
            return part
    msg = f"partition {number} is not in the plan (partitions 1 to {parts[-1].number})"
    raise PlanError(msg)


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
            # One RunStats for the run and its limiter, so progress shows paused hosts.
            stats = RunStats()
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


async def export_results(settings: Settings, fmt: str, output: Path | None) -> int:
    """Export every result row."""
    async with opened_store(settings, read_only=True) as store:
        return await export(store.results(), fmt, output)
