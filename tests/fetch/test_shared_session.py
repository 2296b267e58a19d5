"""One HTTP session for a worker's partitions (``run --partition next``): each partition's
client is a view of it that counts the partition's own requests, reuses its open
connections, and leaves it open; and a run on a limiter that paused before counts only
its own pauses in its samples."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from friendscrape.config import Settings
from friendscrape.core.assemble import http_config, run_config
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.http import FetchCounts, HttpClient, NoLimiter
from friendscrape.fetch.wire import PageRequest
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore


@asynccontextmanager
async def _server() -> AsyncIterator[tuple[str, list[int]]]:
    """A local server that records the client port of each request: (base URL, ports)."""
    ports: list[int] = []

    async def page(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(int(peer[1]) if peer else -1)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", ports
    finally:
        await runner.cleanup()


async def test_partitions_share_one_session_and_count_their_own_requests() -> None:
    async with _server() as (base, ports):
        async with HttpClient(http_config(Settings(base_url=base))) as worker:
            first, second = FetchCounts(), FetchCounts()
            for counts, path in ((first, "a"), (second, "b")):
                async with worker.counting(counts) as http:
                    await http.get_once(PageRequest(url=f"{base}/{path}/1"))
                    await http.get_once(PageRequest(url=f"{base}/{path}/2"))
            # Still open once both views were left: the worker's session outlives them.
            async with worker.counting(FetchCounts()) as http:
                await http.get_once(PageRequest(url=f"{base}/c"))
        assert (first.requests, second.requests) == (2, 2)
        # One connection for all of them: no partition opened its own.
        assert len(ports) == 5
        assert len(set(ports)) == 1, ports
        left = worker.counting(FetchCounts())
        with pytest.raises(RuntimeError, match="outside 'async with'"):
            await left.get_once(PageRequest(url=f"{base}/d"))


class _PausedBefore(NoLimiter):
    """A limiter whose hosts have been paused for ``seconds`` so far."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def paused_seconds(self) -> float:
        return self.seconds

    def learned_rates(self) -> Mapping[str, float]:
        return {"up.example": 4.5}


def test_a_run_on_a_limiter_that_paused_before_counts_its_own_pauses(tmp_path: Path) -> None:
    limiter = _PausedBefore(7.0)
    run = PartitionRun(
        run_config(Settings(store=f"sqlite:///{tmp_path / 'store.db'}")),
        SqliteStore(tmp_path / "store.db"),
        TwitterMobileSource("http://up.example"),
        partition=2,
        limiter=limiter,
    )
    figures = run.sample_figures()
    assert figures.paused_seconds == 0.0
    assert figures.learned_rate == 4.5  # the rate learned earlier carries on
    limiter.seconds = 9.5
    assert run.sample_figures().paused_seconds == 2.5
