"""Rate learned from 429s alone: an upstream that enforces N requests/s and says so only
with ``429 Retry-After: 1`` (no quota headers), at 20, 50 and 150 requests/s.

For each limit a simulator in its own process enforces it (a token bucket of N/s, the
``retry-after`` style), and the same users are collected twice: with the rate learned
from 429s (FRIENDSCRAPE_LEARN_RATE=true) and, for contrast, with that learning off (the
default: pauses and the adaptive concurrency only). Prints, per run, the share of requests
answered 429, the pace (requests the simulator allowed per second of the run) as a share
of the limit, and the users not collected. Figures are the simulator's, on this machine.

Targets (exit 1 when missed, learning on): at most 2% 429s, a pace of at least 80% of
the limit, no user lost.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import structlog

from friendscrape.config import Settings
from friendscrape.core.assemble import build_run
from friendscrape.models import User
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import start_simulator_process
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore
from ratelimit_sweep import counters  # the simulator's rate-limit counters

LIMITS = (20, 50, 150)
SECONDS = 30  # about how long each run lasts at the limit...
MIN_REQUESTS = 1200  # ...or longer, so a share of 2% counts more than a few requests
PAGES_PER_USER = 2.3  # mean_friends 30 on pages of 20 (the simulator's graph)
MAX_429_SHARE = 0.02
MIN_PACE = 0.80


async def one_run(sim: SimConfig, base_url: str, limit: int, *, learn: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.open()
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in sim.make_graph().accounts()]
        )
        await store.plan_partitions(1)
        settings = Settings(
            store=f"sqlite:///{tmp}/bench.db",
            base_url=base_url,
            concurrency=32,
            retry_base_wait=0.1,
            retry_max_wait=2.0,
            fetch_attempts=20,
            fetch_retry_deadline=120.0,
            progress_interval=600.0,
            learn_rate=learn,
        )
        # Built as `friendscrape run` builds it: the limiter and its lag probe included.
        runner = build_run(settings, store, 1, source=TwitterMobileSource(base_url))
        before = await counters(base_url)
        started = time.monotonic()
        summary = await runner.run()
        seconds = time.monotonic() - started
        learned: dict[str, float] = runner.progress_fields()["learned_rate"]  # type: ignore[assignment]
        after = await counters(base_url)
        lost = sim.users - summary.statuses.get("ok", 0) - summary.statuses.get("protected", 0)
        lost -= summary.statuses.get("not_found", 0) + summary.statuses.get("suspended", 0)
        lost -= summary.statuses.get("invalid", 0)
        await store.close()
    allowed = after["allowed"] - before["allowed"]
    refused = after["limited"] - before["limited"]
    return {
        "share_429": refused / max(allowed + refused, 1),
        "pace": allowed / seconds / limit,
        "requests": allowed + refused,
        "lost": lost,
        "rate": max(learned.values(), default=0.0),
    }


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print("simulator: 429 with Retry-After only, no quota headers; 20 ms latency")
    print(
        f"{'limit/s':>7} {'learning':>8} {'requests':>9} {'429 share':>10} "
        f"{'pace/limit':>10} {'learned/s':>9} {'lost':>5}"
    )
    ok = True
    for limit in LIMITS:
        users = int(max(limit * SECONDS, MIN_REQUESTS) / PAGES_PER_USER)
        sim = SimConfig(
            users=users,
            seed=11,
            latency=0.02,
            mean_friends=30,
            rate_limit=str(limit),
            rate_limit_style="retry-after",
        )
        for learn in (True, False):
            # A fresh simulator per run: a full bucket, and counters of this run alone.
            with start_simulator_process(sim) as proc:
                row = asyncio.run(one_run(sim, proc.base_url, limit, learn=learn))
            print(
                f"{limit:>7} {'on' if learn else 'off':>8} {row['requests']:>9.0f} "
                f"{row['share_429']:>10.1%} {row['pace']:>10.0%} {row['rate']:>9.1f} "
                f"{row['lost']:>5.0f}",
                flush=True,
            )
            if learn and (
                row["share_429"] > MAX_429_SHARE or row["pace"] < MIN_PACE or row["lost"]
            ):
                ok = False
    print("targets (learning on): 429s <= 2%, pace >= 80% of the limit, no user lost")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
