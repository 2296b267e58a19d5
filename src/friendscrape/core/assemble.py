"""Build one partition's run from settings, a store and a partition: the one place that
wires a run's counters, source and limiter together."""

from __future__ import annotations

import asyncio

from friendscrape.config import Settings
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.pipeline import PartitionRun, RunConfig
from friendscrape.fetch.http import Limiter
from friendscrape.fetch.limiter import LimiterConfig, build_limiter
from friendscrape.sources import make_source
from friendscrape.sources.base import Source
from friendscrape.stores.base import Store


def build_run(
    settings: Settings,
    store: Store,
    partition: int,
    *,
    stop: asyncio.Event | None = None,
    source: Source | None = None,
    limiter: Limiter | None = None,
) -> PartitionRun:
    """The run of ``partition``, paced by the limiter ``friendscrape run`` uses.

    ``source`` and ``limiter`` default to the ones the settings name; the run's counters
    are its own (``PartitionRun.stats``). The default limiter carries the token pool to
    the hosts the source names and reads the event loop's lag the run measures.
    """
    source = source if source is not None else make_source(settings)
    lag = LoopLag()
    return PartitionRun(
        RunConfig.from_settings(settings),
        store,
        source,
        partition=partition,
        stop=stop,
        limiter=limiter
        if limiter is not None
        else build_limiter(
            LimiterConfig.from_settings(settings),
            credential_hosts=source.credential_hosts,
            tokens=settings.credentials().tokens,
            lag=lag.seconds,
        ),
        loop_lag=lag,
    )
