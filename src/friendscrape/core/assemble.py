"""Build one partition's run from settings, a store and a partition: the one place that
wires a run's counters, source and limiter together, and the one part of core that
reads Settings. Each part of a run takes only its own small frozen config (as httpx's
client takes a ``Timeout`` and ``Limits``); the functions here build them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from friendscrape import loopbound
from friendscrape.config import Settings
from friendscrape.configparts import source_config, store_retry_policy
from friendscrape.core.breaker import BreakerConfig
from friendscrape.core.collect import CollectConfig
from friendscrape.core.counters import RunCounters
from friendscrape.core.lease import LeaseConfig
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.pipeline import Handover, PartitionRun, RunConfig
from friendscrape.core.redaction import Redactor
from friendscrape.credentials import Credentials
from friendscrape.fetch.http import HttpClient, HttpConfig, Limiter, OriginAuth
from friendscrape.fetch.limiter import LimiterConfig, build_limiter
from friendscrape.retry import RetryPolicy
from friendscrape.sources import make_source
from friendscrape.sources.base import Source
from friendscrape.stores.base import Store


@dataclass(frozen=True, slots=True)
class WorkerFetch:
    """What a worker's partitions share (``run --partition next``): one limiter, so
    the rates learned from 429s and the pauses asked for carry from one partition to
    the next; the event loop's lag it reads; one open HTTP session and its connections;
    and its ``concurrency`` fetcher slots, so a partition claimed while the one before
    drains takes the slots that one's last users free, never more in all."""

    limiter: Limiter
    loop_lag: LoopLag
    http: HttpClient
    slots: asyncio.BoundedSemaphore


def _limiter(
    settings: Settings, source: Source, lag: LoopLag, credentials: Credentials | None = None
) -> Limiter:
    """The limiter the settings ask for: the token pool to the hosts the source names,
    reading the event loop's ``lag``."""
    held = credentials if credentials is not None else settings.credentials()
    return build_limiter(
        limiter_config(settings),
        credential_hosts=source.credential_hosts,
        tokens=held.tokens,
        lag=lag.seconds,
    )


@asynccontextmanager
async def worker_fetch(
    settings: Settings, source: Source, limiter: Limiter | None = None
) -> AsyncIterator[WorkerFetch]:
    """The limiter (``limiter``, or the one the settings ask for) and open HTTP session
    of a worker's partitions, closed when the block ends."""
    lag = LoopLag()
    paced = limiter if limiter is not None else _limiter(settings, source, lag)
    async with HttpClient(http_config(settings), limiter=paced) as http:
        yield WorkerFetch(paced, lag, http, loopbound.BoundedSemaphore(settings.concurrency))


def build_run(
    settings: Settings,
    store: Store,
    partition: int,
    *,
    stop: asyncio.Event | None = None,
    source: Source | None = None,
    limiter: Limiter | None = None,
    shared: WorkerFetch | None = None,
    fed: asyncio.Event | None = None,
    handover: Handover | None = None,
    stats: RunCounters | None = None,
    pending: int | None = None,
) -> PartitionRun:
    """The run of ``partition``, paced by the limiter ``friendscrape run`` uses.

    ``source`` and ``limiter`` default to the ones the settings name; the run's counters
    are its own (``PartitionRun.stats``). The default limiter carries the token pool to
    the hosts the source names and reads the event loop's lag the run measures.
    ``shared``: the limiter and session of the worker's partitions, used instead of the
    run's own (``limiter`` is then ignored), and its fetcher slots. ``fed``: set once
    every pending user of the partition was handed to a fetcher; ``handover``: how it
    hands the worker's fetchers to its next partition (``Handover``); ``stats``: the
    run's counters, when the caller reads them while it runs (its own otherwise);
    ``pending``: the partition's pending users as the caller just counted them.
    """
    source = source if source is not None else make_source(source_config(settings))
    credentials = settings.credentials()
    if shared is not None:
        lag, paced, http, slots = shared.loop_lag, shared.limiter, shared.http, shared.slots
    else:
        lag, http, slots = LoopLag(), None, None
        paced = limiter if limiter is not None else _limiter(settings, source, lag, credentials)
    return PartitionRun(
        run_config(settings, credentials),
        store,
        source,
        partition=partition,
        stop=stop,
        limiter=paced,
        loop_lag=lag,
        http=http,
        slots=slots,
        fed=fed,
        handover=handover,
        stats=stats,
        pending=pending,
    )


def run_config(settings: Settings, credentials: Credentials | None = None) -> RunConfig:
    """The run's part of the settings, and that of the parts it builds (``credentials``:
    the settings' own, when the caller has not read them out already)."""
    return RunConfig(
        concurrency=settings.concurrency,
        queue_size=settings.queue_size,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        write_timeout=settings.write_timeout,
        stall_timeout=settings.stall_timeout,
        grace_period=settings.grace_period,
        stop_timeout=settings.stop_timeout,
        progress_interval=settings.progress_interval,
        retry_failed=settings.retry_failed,
        users_limit=settings.users_limit,
        http=http_config(settings),
        collect=collect_config(settings, credentials),
        breaker=breaker_config(settings),
        store_retry=store_retry_policy(settings),
    )


def http_config(settings: Settings) -> HttpConfig:
    """The HTTP client's part of the settings: timeouts, User-Agent, body cap, how hard
    a page is retried, and the base URL's user name and password for its origin."""
    in_url = settings.base_url_credentials
    return HttpConfig(
        request_timeout=settings.request_timeout,
        connect_timeout=settings.connect_timeout,
        user_agent=settings.user_agent,
        max_page_bytes=settings.max_page_bytes,
        retry=RetryPolicy(
            attempts=settings.fetch_attempts,
            deadline=settings.fetch_retry_deadline,
            base_wait=settings.retry_base_wait,
            max_wait=settings.retry_max_wait,
        ),
        base_auth=(
            OriginAuth.for_url(settings.base_url, in_url.basic_header())
            if in_url is not None and settings.base_url
            else None
        ),
    )


def collect_config(settings: Settings, credentials: Credentials | None = None) -> CollectConfig:
    """The collector's part of the settings, with a redactor of every secret they hold."""
    held = credentials if credentials is not None else settings.credentials()
    return CollectConfig(
        max_friends=settings.max_friends,
        max_pages=settings.max_pages,
        redactor=Redactor.of(held),
    )


def breaker_config(settings: Settings) -> BreakerConfig:
    """The circuit breaker's part of the settings."""
    return BreakerConfig(users=settings.breaker_users)


def limiter_config(settings: Settings) -> LimiterConfig:
    """The pacing the settings ask for; the host cap never exceeds --concurrency."""
    host = settings.host_concurrency or settings.concurrency
    return LimiterConfig(
        settings.rate_limit,
        min(host, settings.concurrency),
        settings.adaptive,
        settings.max_pause,
        # Learning a rate from 429s is part of adapting: --no-adaptive turns both off.
        learn_rate=settings.adaptive and settings.learn_rate,
    )


def lease_config(settings: Settings) -> LeaseConfig:
    """The lease's part of the settings (checked there: heartbeat < ttl)."""
    return LeaseConfig(
        ttl=settings.lease_ttl,
        heartbeat=settings.lease_heartbeat,
        retry=store_retry_policy(settings),
    )
