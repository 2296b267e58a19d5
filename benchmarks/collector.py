"""Collector throughput, CPU per page and peak memory against the simulator in its own process.

Targets, with the simulator at 0.3 s a page and the real friend-count distribution:
- at concurrency 500 the collector reaches >= 90% of the ideal rate
  (concurrency / (pages per user x latency)), or saturates one core;
- at most 400 microseconds of collector CPU per page (HTTP + parse + save);
- peak RSS at most 300 MB at concurrency 1000.

The rate is measured in pages per second against the ideal concurrency / latency (in
users per minute it is the same share), and with CPU per page over the steady part of
each trial: from WARMUP seconds in (connections opened, the limiter's slow start done)
to the stop. Each trial runs in a fresh process, so its CPU time and
peak RSS are its own (`friendscrape bench` runs its grid in one process).

    python benchmarks/collector.py                 # both trials, a table and PASS/FAIL lines
    python benchmarks/collector.py --trial 500     # one trial, JSON
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from friendscrape.commands.bench import TrialConfig, run_trial

LATENCY = 0.3
USERS = 20_000
SECONDS = 50.0
WARMUP = 10.0  # connections opening and the limiter's slow start are not the steady pace


async def one(concurrency: int) -> dict[str, object]:
    config = TrialConfig(
        concurrency=(concurrency,), users=USERS, latency=LATENCY, duration=SECONDS, warmup=WARMUP
    )
    with tempfile.TemporaryDirectory(prefix="friendscrape-bench-") as tmp:
        result = await run_trial(config, concurrency, Path(tmp))
    ideal_pages_per_s = concurrency / LATENCY
    steady_pages_per_s = result.steady_pages / result.steady_seconds
    return {
        "concurrency": concurrency,
        "users": result.users,
        "users_per_min": round(result.users_per_min, 1),
        "pages_per_s": round(steady_pages_per_s, 1),
        "share_of_ideal": round(steady_pages_per_s / ideal_pages_per_s, 3),
        "cpu_share": round(result.steady_cpu_seconds / result.steady_seconds, 2),
        "cpu_us_per_page": round(result.steady_cpu_seconds / result.steady_pages * 1e6, 1),
        "peak_rss_mb": result.peak_rss_mb,
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--trial":
        print(json.dumps(asyncio.run(one(int(sys.argv[2])))))
        return 0
    rows = []
    for concurrency in (500, 1000):
        out = subprocess.run(
            [sys.executable, __file__, "--trial", str(concurrency)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    keys = list(rows[0])
    print("  ".join(f"{k:>15}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>15}" for k in keys))
    at500, at1000 = rows
    checks = {
        "concurrency 500: >= 90% of the ideal rate, or one core saturated": at500["share_of_ideal"]
        >= 0.9
        or at500["cpu_share"] >= 0.95,
        "<= 400 us of collector CPU per page": max(r["cpu_us_per_page"] for r in rows) <= 400,
        "concurrency 1000: peak RSS <= 300 MB": at1000["peak_rss_mb"] <= 300,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
