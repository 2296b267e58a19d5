"""Rate learned from 429s alone: an upstream that enforces N requests/s and says so only
with ``429 Retry-After: 1`` (no quota headers), at 20, 50 and 150 requests/s; and an
upstream whose 429s come at random, whatever the pace.

For each limit a simulator in its own process enforces it (a token bucket of N/s, the
``retry-after`` style), and the same users are collected twice: with the rate learned
from 429s (FRIENDSCRAPE_LEARN_RATE=true) and, for contrast, with that learning off
(the default: pauses and the adaptive concurrency only). Prints, per run, the share of
requests answered 429, the pace (requests the simulator allowed per second of the run) as
a share of the limit, and the users not collected.

Then a simulator with no limit answers a share of pages (5%, 1%; 5% among 10% of 500s
and 2% dropped connections) with ``429 Retry-After: 1`` at random, and the same users
are collected with learning on and off: pages answered per second, and the share of the
pace with learning off that learning on keeps. Figures are the simulator's, on this
machine (shared: expect some noise).

Targets (exit 1 when missed, learning on): at most 2% 429s, a pace of at least 80% of
the limit, no user lost; under random 429s at least 90% of the pages/s of learning off,
no user lost. ``python benchmarks/ratelimit_learning.py limits`` (or ``random``) runs one
half.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from friendscrape.config import Settings
from friendscrape.core.assemble import build_run
from friendscrape.core.pipeline import RunSummary
from friendscrape.models import User
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import control_json, start_simulator_process
from friendscrape.sources.twitter_mobile import TwitterMobileSource
from friendscrape.stores.sqlite import SqliteStore
from ratelimit_sweep import counters  # the simulator's rate-limit counters

LIMITS = (20, 50, 150)
SECONDS = 30  # about how long each run lasts at the limit...
MIN_REQUESTS = 1200  # ...or longer, so a share of 2% counts more than a few requests
PAGES_PER_USER = 2.3  # mean_friends 30 on pages of 20 (the simulator's graph)
MAX_429_SHARE = 0.02
MIN_PACE = 0.80
# Upstreams whose 429s come at random: (label, users for about 40 s a run with learning
# off, the simulator's faults). The last adds the reliability tests' other faults (500s,
# dropped connections), as a flaky upstream has them.
RANDOM_FAULTS: tuple[tuple[str, int, dict[str, float]], ...] = (
    ("5%", 400, {"rate_limit_rate": 0.05}),
    ("1%", 1200, {"rate_limit_rate": 0.01}),
    ("5%+faults", 300, {"rate_limit_rate": 0.05, "error_rate": 0.10, "drop_rate": 0.02}),
)
MIN_RANDOM_KEEP = 0.90


def _lost(sim: SimConfig, statuses: Mapping[str, int]) -> int:
    """Users without a final status: neither collected nor found gone."""
    done = ("ok", "protected", "not_found", "suspended", "invalid")
    return sim.users - sum(statuses.get(status, 0) for status in done)


async def _counters(sim: SimConfig, base_url: str) -> dict[str, Any]:
    """The simulator's page counters, and its rate-limit ones when it has a limit."""
    limits = await counters(base_url) if sim.rate_limit is not None else {}
    return {"limits": limits, "pages": await control_json(base_url, "stats")}


async def _collect(
    sim: SimConfig, base_url: str, *, learn: bool
) -> tuple[RunSummary, float, dict[str, Any], dict[str, Any], Mapping[str, float]]:
    """Collect ``sim``'s users once, as `friendscrape run` would: the run's summary, its
    seconds, the simulator's counters before and after, and the rates it learned."""
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
        before = await _counters(sim, base_url)
        started = time.monotonic()
        summary = await runner.run()
        seconds = time.monotonic() - started
        learned: Mapping[str, float] = runner.progress_fields()["learned_rate"]  # type: ignore[assignment]
        after = await _counters(sim, base_url)
        await store.close()
    return summary, seconds, before, after, learned


async def limit_run(sim: SimConfig, base_url: str, limit: int, *, learn: bool) -> dict[str, float]:
    """One run against a limit of ``limit`` requests/s."""
    summary, seconds, before, after, learned = await _collect(sim, base_url, learn=learn)
    allowed = after["limits"]["allowed"] - before["limits"]["allowed"]
    refused = after["limits"]["limited"] - before["limits"]["limited"]
    return {
        "share_429": refused / max(allowed + refused, 1),
        "pace": allowed / seconds / limit,
        "requests": allowed + refused,
        "lost": _lost(sim, summary.statuses),
        "rate": max(learned.values(), default=0.0),
    }


async def random_run(sim: SimConfig, base_url: str, *, learn: bool) -> dict[str, float]:
    """One run against random 429s: pages answered (not 429) per second."""
    summary, seconds, before, after, learned = await _collect(sim, base_url, learn=learn)

    def answered(stats: dict[str, Any]) -> int:
        pages: int = stats["pages"]["pages"]
        return pages - int(stats["pages"]["by_status"].get("429", 0))

    refused = after["pages"]["by_status"].get("429", 0) - before["pages"]["by_status"].get("429", 0)
    return {
        "pages_per_s": (answered(after) - answered(before)) / seconds,
        "seconds": seconds,
        "refused": refused,
        "lost": _lost(sim, summary.statuses),
        "learning": 1.0 if learned else 0.0,
    }


def limits() -> bool:
    """The limits half; True when learning met its targets."""
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
                row = asyncio.run(limit_run(sim, proc.base_url, limit, learn=learn))
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
    return ok


def random_429s() -> bool:
    """The random-429s half; True when learning kept its target share of the pace."""
    print("simulator: no limit; a share of pages answered 429 Retry-After: 1 at random")
    print(
        f"{'random 429':>10} {'learning':>8} {'seconds':>8} {'429s':>6} {'pages/s':>8} "
        f"{'kept':>6} {'still learning':>14} {'lost':>5}"
    )
    ok = True
    for label, users, faults in RANDOM_FAULTS:
        sim = SimConfig(
            users=users, seed=11, latency=0.02, mean_friends=30, retry_after=1, **faults
        )
        rows = {}
        for learn in (False, True):
            with start_simulator_process(sim) as proc:
                rows[learn] = row = asyncio.run(random_run(sim, proc.base_url, learn=learn))
            kept = row["pages_per_s"] / rows[False]["pages_per_s"]
            print(
                f"{label:>10} {'on' if learn else 'off':>8} {row['seconds']:>8.1f} "
                f"{row['refused']:>6.0f} {row['pages_per_s']:>8.1f} {kept:>6.0%} "
                f"{'yes' if row['learning'] else 'no':>14} {row['lost']:>5.0f}",
                flush=True,
            )
            if learn and (kept < MIN_RANDOM_KEEP or row["lost"]):
                ok = False
    print("target (learning on): >= 90% of the pages/s of learning off, no user lost")
    return ok


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    halves = sys.argv[1:] or ["limits", "random"]
    ok = True
    if "limits" in halves:
        ok = limits() and ok
    if "random" in halves:
        ok = random_429s() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
