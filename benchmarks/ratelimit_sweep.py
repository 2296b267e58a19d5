"""Concurrency sweep against a rate-limited simulator: does more concurrency buy speed?

Starts the simulator in its own process, limited to RATE requests/s per client (a token
bucket, X-style headers), and collects the same users at each concurrency, with the
adaptive limiter and, for contrast, without any limiter. Prints one row per run:
concurrency, users per minute, the share of requests answered 429, and the p50/p95 page
latency as the collector sees it (waiting for the limiter included). Exits non-zero if
the limiter lets 429s pass 1% of requests.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from friendscrape.config import Settings
from friendscrape.core.assemble import limiter_config, run_config
from friendscrape.core.loop_lag import LoopLag
from friendscrape.core.pipeline import PartitionRun
from friendscrape.fetch.http import Limiter, NoLimiter, Permit
from friendscrape.fetch.limiter import build_limiter
from friendscrape.models import User
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import control_json, start_simulator_process
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore

RATE = 50
USERS = 150
SIM = SimConfig(
    users=USERS,
    seed=11,
    latency=0.05,
    mean_friends=30,
    rate_limit=str(RATE),
    rate_limit_style="x-api",
)
CONCURRENCIES = (1, 2, 4, 8, 16, 32, 64)
UNLIMITED = (4, 16, 64)


class Timed:
    """A Limiter wrapper recording each page's time from asking to answer."""

    def __init__(self, inner: Limiter) -> None:
        self._inner = inner
        self._asked: dict[int, float] = {}
        self.latencies: list[float] = []

    async def acquire(self, host: str) -> Permit:
        asked = time.monotonic()
        permit = await self._inner.acquire(host)
        # A fresh Permit per request, so its id keys this request's start time.
        permit = Permit(headers=permit.headers, credential=permit.credential, seq=permit.seq)
        self._asked[id(permit)] = asked
        return permit

    def release(
        self,
        host: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
        latency: float,
        permit: Permit | None = None,
    ) -> None:
        if permit is not None:
            self.latencies.append(time.monotonic() - self._asked.pop(id(permit)))
        self._inner.release(host, status=status, headers=headers, latency=latency, permit=permit)

    def paused(self) -> Mapping[str, float]:
        return self._inner.paused()

    def learned_rates(self) -> Mapping[str, float]:
        return self._inner.learned_rates()

    def paused_seconds(self) -> float:
        return self._inner.paused_seconds()


async def counters(base_url: str) -> dict[str, Any]:
    """The simulator's rate-limit counters."""
    return await control_json(base_url, "ratelimit")


async def one_run(base_url: str, concurrency: int, *, limited: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.open()
        accounts = SIM.make_graph().accounts()
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in accounts]
        )
        await store.plan_partitions(1)
        settings = Settings(
            store=f"sqlite:///{tmp}/bench.db",
            base_url=base_url,
            concurrency=concurrency,
            retry_base_wait=0.1,
            retry_max_wait=2.0,
            fetch_attempts=10,
            progress_interval=600.0,
        )
        lag = LoopLag()
        source = TwitterMobileSource(base_url)
        timed = Timed(
            build_limiter(
                limiter_config(settings),
                credential_hosts=source.credential_hosts,
                tokens=(),
                lag=lag.seconds,
            )
            if limited
            else NoLimiter()
        )
        before = await counters(base_url)
        runner = PartitionRun(
            run_config(settings),
            store,
            source,
            partition=1,
            limiter=timed,
            loop_lag=lag,
        )
        summary = await runner.run()
        after = await counters(base_url)
        await store.close()
    allowed = after["allowed"] - before["allowed"]
    limited_count = after["limited"] - before["limited"]
    quantiles = statistics.quantiles(timed.latencies, n=20)
    return {
        "users_per_min": summary.users_per_minute,
        "share_429": limited_count / max(allowed + limited_count, 1),
        "p50": quantiles[9],
        "p95": quantiles[18],
        "requests": allowed + limited_count,
    }


async def sweep(base_url: str) -> bool:
    print(f"simulator: {RATE} requests/s per client, {SIM.latency * 1000:.0f} ms latency")
    print(
        f"{'limiter':>8} {'concurrency':>11} {'users/min':>10} {'429 share':>10} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'requests':>9}"
    )
    ok = True
    runs = [(c, True) for c in CONCURRENCIES] + [(c, False) for c in UNLIMITED]
    for concurrency, limited in runs:
        row = await one_run(base_url, concurrency, limited=limited)
        print(
            f"{'adaptive' if limited else 'none':>8} {concurrency:>11} "
            f"{row['users_per_min']:>10.0f} {row['share_429']:>10.1%} "
            f"{row['p50'] * 1000:>8.0f} {row['p95'] * 1000:>8.0f} {row['requests']:>9.0f}",
            flush=True,
        )
        if limited and row["share_429"] >= 0.01:
            ok = False
        await asyncio.sleep(1.5)  # let the simulator's bucket refill between runs
    return ok


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with start_simulator_process(SIM) as sim:
        ok = asyncio.run(sweep(sim.base_url))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
