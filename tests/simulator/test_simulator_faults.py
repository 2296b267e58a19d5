"""Faults: each at rate 1.0 gives its failure; partial rates are deterministic; hangs end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest

from friendscrape.simulator import AccountKind, RunningSimulator, SimConfig, run_simulator


def ok_name(sim: RunningSimulator) -> str:
    return next(
        a.screen_name
        for a in sim.graph.accounts()
        if a.kind is AccountKind.OK and a.following_count > 45
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the server to reach a state (a condition, not a fixed delay)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_error_rate_one_gives_http_500(http: aiohttp.ClientSession) -> None:
    async with run_simulator(SimConfig(users=50, latency=0, error_rate=1.0)) as sim:
        for _ in range(3):
            async with http.get(sim.following_url(ok_name(sim))) as response:
                assert response.status == 500
        assert sim.stats.by_status == {"500": 3}


async def test_rate_limit_rate_one_gives_429_with_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    config = SimConfig(users=50, latency=0, rate_limit_rate=1.0, retry_after=3)
    async with run_simulator(config) as sim:
        async with http.get(sim.following_url(ok_name(sim))) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "3"
        assert sim.stats.by_status == {"429": 1}


async def test_drop_rate_one_closes_the_connection(http: aiohttp.ClientSession) -> None:
    async with run_simulator(SimConfig(users=50, latency=0, drop_rate=1.0)) as sim:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with http.get(sim.following_url(ok_name(sim))) as response:
                await response.read()
        # aiohttp's client may retry an idempotent request once on a fresh connection.
        assert set(sim.stats.by_status) == {"dropped"}
        assert sim.stats.by_status["dropped"] >= 1


async def test_hang_rate_one_never_answers_and_does_not_block_shutdown(
    http: aiohttp.ClientSession,
) -> None:
    async with run_simulator(SimConfig(users=50, latency=0, hang_rate=1.0)) as sim:
        # A client with a short timeout gives up.
        with pytest.raises(asyncio.TimeoutError):
            async with http.get(
                sim.following_url(ok_name(sim)), timeout=aiohttp.ClientTimeout(total=0.3)
            ):
                pass
        # A patient client is still waiting when the server stops.
        waiting = asyncio.create_task(http.get(sim.following_url(ok_name(sim) + "x")))
        await wait_until(lambda: sim.stats.by_status["hung"] == 2)
        assert not waiting.done()
        stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 3.0
    with pytest.raises(aiohttp.ClientError):
        await waiting


async def test_faults_at_partial_rates_are_deterministic_and_retries_get_fresh_draws(
    http: aiohttp.ClientSession,
) -> None:
    config = SimConfig(users=200, latency=0, error_rate=0.2, rate_limit_rate=0.1)
    runs: list[list[int]] = []
    for _ in range(2):
        async with run_simulator(config) as sim:
            statuses = []
            for account in list(sim.graph.accounts())[:150]:
                async with http.get(sim.following_url(account.screen_name)) as response:
                    statuses.append(response.status)
            runs.append(statuses)
            failed = [
                a.screen_name
                for a, status in zip(sim.graph.accounts(), statuses, strict=False)
                if status in {429, 500}
            ]
            # Retrying a URL that failed draws again: within a few tries it succeeds.
            for name in failed[:10]:
                for _ in range(20):
                    async with http.get(sim.following_url(name)) as response:
                        if response.status not in {429, 500}:
                            break
                else:
                    pytest.fail(f"{name} never got past the fault")
    assert runs[0] == runs[1]
    share = sum(s in {429, 500} for s in runs[0]) / len(runs[0])
    assert 0.15 <= share <= 0.45
    assert 429 in runs[0]
    assert 500 in runs[0]


async def test_latency_delays_each_page(http: aiohttp.ClientSession) -> None:
    async with run_simulator(SimConfig(users=20, latency=0.25)) as sim:
        started = time.monotonic()
        async with http.get(sim.following_url(ok_name(sim))) as response:
            assert response.status == 200
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        async with http.get(sim.stats_url) as response:
            assert response.status == 200
        assert time.monotonic() - started < 0.25
