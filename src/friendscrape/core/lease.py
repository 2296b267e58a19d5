"""A run's hold on its partition: take the lease, renew it on a heartbeat, give it up.

Two runs of one partition would fetch every user twice; the lease in the store lets
only one collect. The holder renews it every ``lease_heartbeat`` seconds; a run that
finds it held exits with PartitionHeldError (exit 6), and a lease not renewed for
``lease_ttl`` seconds (its holder was killed) is taken over by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from friendscrape.errors import PartitionHeldError, StoreError, StoreTransientError
from friendscrape.retry import RetryPolicy, retry_call
from friendscrape.stores.base import Lease, RunStore

log = structlog.get_logger(__name__)

_RANDOM = random.Random()


def jitter() -> float:
    """A factor from 0.5 to 1.5 spreading retries of workers that failed together."""
    return _RANDOM.uniform(0.5, 1.5)


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """How long a hold lasts unrenewed, how often it is renewed, and how taking and
    giving it up are retried (the store policy)."""

    ttl: float
    heartbeat: float
    retry: RetryPolicy


@dataclass(slots=True)
class LeaseState:
    """Why the run lost its lease while running (None while it holds it)."""

    lost: str | None = None


async def _heartbeat(
    store: RunStore,
    lease: Lease,
    config: LeaseConfig,
    state: LeaseState,
    on_lost: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()
    renewed = loop.time()
    wait = config.heartbeat
    while True:
        await asyncio.sleep(wait)
        try:
            async with asyncio.timeout(config.heartbeat):
                held = await store.renew_lease(lease)
        except (StoreError, TimeoutError) as exc:
            since = loop.time() - renewed
            log.warning(
                "lease.heartbeat_failed",
                error=str(exc) or type(exc).__name__,
                since=round(since, 1),
            )
            if since >= config.ttl:
                # Unrenewed past the ttl, another run may already have taken it over.
                state.lost = f"could not renew it for {since:.0f}s ({exc or 'timeout'})"
                break
            # Renewed again sooner than the next beat, so a brief store hiccup costs
            # nothing: the heartbeat is this loop's one retry (within the ttl, not the
            # store policy's budget, which could outlast the lease). Jittered: workers
            # whose renewals BigQuery aborted together ("could not serialize access ...
            # due to concurrent update") must not all retry in the same instant again.
            wait = min(config.heartbeat, max(config.heartbeat / 4, 0.05) * jitter())
            continue
        if not held:
            state.lost = "another run took it over"
            break
        renewed = loop.time()
        wait = config.heartbeat
        log.debug("lease.heartbeat")
    log.error("lease.lost", reason=state.lost)
    on_lost()


async def take_lease(store: RunStore, partition: int, run_id: str, config: LeaseConfig) -> Lease:
    """Take ``partition``'s lease (transient store errors retried by the store policy, with
    jitter); PartitionHeldError when a live run holds it."""
    lease = Lease(partition=partition, run_id=run_id, ttl=config.ttl)
    await retry_call(
        lambda: store.acquire_lease(lease),
        on=StoreTransientError,
        policy=config.retry,
        event="lease.retry",
    )
    return lease


@asynccontextmanager
async def held_lease(
    store: RunStore, lease: Lease, config: LeaseConfig, *, on_lost: Callable[[], None]
) -> AsyncIterator[LeaseState]:
    """Renew ``lease`` (already taken) on a heartbeat for the block, then release it.

    ``on_lost`` is called when the lease is lost mid-run (e.g. to stop taking users);
    the state says why. The lease is released when the block ends while still held.
    """
    log.info(
        "lease.taken", host=lease.host, pid=lease.pid, ttl=config.ttl, heartbeat=config.heartbeat
    )
    state = LeaseState()
    beat = asyncio.create_task(_heartbeat(store, lease, config, state, on_lost))
    try:
        yield state
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        if state.lost is None:
            try:
                await store.release_lease(lease)
            except StoreError as exc:
                # Not retried: the run is ending, maybe inside the stop's budget, and the
                # lease lapses by itself after the ttl; the next run only waits longer.
                log.warning("lease.release_failed", error=str(exc))
            else:
                log.info("lease.released")


@asynccontextmanager
async def held_partition(
    store: RunStore,
    partition: int,
    run_id: str,
    config: LeaseConfig,
    *,
    on_lost: Callable[[], None],
) -> AsyncIterator[LeaseState]:
    """Hold ``partition`` for the block (PartitionHeldError if a live run holds it); see
    ``held_lease``."""
    try:
        lease = await take_lease(store, partition, run_id, config)
    except PartitionHeldError as exc:
        log.error("lease.held", error=str(exc), exit_code=exc.exit_code)
        raise
    async with held_lease(store, lease, config, on_lost=on_lost) as state:
        yield state
