"""Build one partition's run from settings, a store and a partition: the one place that
wires a run's counters, source and limiter together."""

from __future__ import annotations

import asyncio

from friendscrape.config import Settings
from friendscrape.core.counters import RunCounters
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.http import Limiter
from friendscrape.fetch.limiter import build_limiter
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
    are its own (``PartitionRun.stats``), and the default limiter is built from them.
    """
    counters = RunCounters()
    return PartitionRun(
        settings,
        store,
        source if source is not None else make_source(settings),
        partition=partition,
        stop=stop,
        limiter=limiter if limiter is not None else build_limiter(settings, counters),
        stats=counters,
    )
