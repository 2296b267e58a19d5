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

Then the floor: friendscrape's CPU per page beside two bare clients collecting the same
users (benchmarks/reference_aiohttp.py: aiohttp + selectolax or json, no checks;
benchmarks/reference_streams.py: hand-written HTTP on asyncio streams), on the HTML
source and on x-api, at latency 0 against pre-rendered pages (benchmarks/prerendered.py,
a few microseconds a page, in its own process). Each client runs in a fresh process
and counts its own user+sys time over the collection; the three take turns, REPS times,
and the ratios are of figures measured in the same run (the machine's load moves
absolute figures, much less their ratios). Target: on x-api at most 1.2x the aiohttp
client.

    python benchmarks/collector.py                 # trials, floor, table and PASS/FAIL lines
    python benchmarks/collector.py --trial 500     # one trial, JSON
    python benchmarks/collector.py --floor         # the floor comparison only
    python benchmarks/collector.py --floor x-api   # ... of one source
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from friendscrape.commands.bench import one_partition_job, run_trial
from friendscrape.commands.bench_options import TrialConfig
from friendscrape.config import Settings
from friendscrape.core.assemble import build_run
from friendscrape.stores.sqlite import SqliteStore

LATENCY = 0.3
USERS = 20_000
SECONDS = 50.0
WARMUP = 10.0  # connections opening and the limiter's slow start are not the steady pace

HERE = Path(__file__).resolve().parent
# The floor comparison: users per source (about 4,600 HTML pages of 20 names; about
# 2,000 x-api pages of up to 1,000), workers per client, repetitions.
FLOOR_USERS = {"twitter-mobile": 150, "x-api": 1500}
FLOOR_CONCURRENCY = 50
REPS = 3
CLIENTS = ("friendscrape", "aiohttp", "streams")
X_API_MAX_RATIO = 1.2


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


async def floor_trial(source: str, base_url: str, users_csv: Path) -> dict[str, float]:
    """friendscrape collecting every user of ``users_csv`` from ``base_url``, as
    `friendscrape run` does, into a fresh SQLite store: pages and CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="friendscrape-floor-") as tmp:
        db = Path(tmp) / "floor.db"
        settings = Settings.model_validate(
            {
                "store": f"sqlite:///{db}",
                "base_url": base_url,
                "source": source,
                "concurrency": FLOOR_CONCURRENCY,
                "progress_interval": 3600.0,
                "grace_period": 0.0,
            }
        )
        store = SqliteStore(db)
        await store.open()
        try:
            await one_partition_job(store, users_csv)
            runner = build_run(settings, store, 1)
            started = time.process_time()
            await runner.run()
            cpu = time.process_time() - started
            pages = runner.stats.pages
        finally:
            await store.close()
    return {"pages": pages, "cpu_seconds": cpu}


def _client(client: str, source: str, base_url: str, users_csv: Path) -> dict[str, float]:
    """One client's collection in a fresh process; its last output line is JSON."""
    if client == "friendscrape":
        command = [sys.executable, __file__, "--floor-trial", source, base_url, str(users_csv)]
    else:
        script = HERE / f"reference_{client}.py"
        command = [sys.executable, str(script), "--base", base_url, "--source", source]
        command += ["--users-csv", str(users_csv), "--concurrency", str(FLOOR_CONCURRENCY)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def floor(source: str) -> dict[str, list[float]]:
    """Microseconds of CPU per page of each client, REPS turns each, one server."""
    with tempfile.TemporaryDirectory(prefix="friendscrape-floor-") as tmp:
        users_csv = Path(tmp) / "users.csv"
        server = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "prerendered.py"),
                *("--source", source, "--users", str(FLOOR_USERS[source])),
                *("--users-csv", str(users_csv)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            ready = server.stdout.readline().split()
            if not ready or ready[0] != "READY":
                msg = f"pre-rendered server did not start: {ready!r}"
                raise RuntimeError(msg)
            base_url = f"http://127.0.0.1:{ready[1]}"
            us: dict[str, list[float]] = {client: [] for client in CLIENTS}
            for _ in range(REPS):
                for client in CLIENTS:
                    result = _client(client, source, base_url, users_csv)
                    us[client].append(result["cpu_seconds"] / result["pages"] * 1e6)
        finally:
            server.terminate()
            tail, _ = server.communicate(timeout=30)
        if "MISSED 0" not in tail:
            msg = f"clients asked for pages the server did not render: {tail.strip()!r}"
            raise RuntimeError(msg)
    return us


def print_floor(source: str, us: dict[str, list[float]]) -> dict[str, float]:
    """The table of one source; returns the median ratios to each reference."""
    print(f"CPU per page, {source}, latency 0, pre-rendered simulator pages (us; {REPS} turns)")
    print(f"{'client':>14} {'min':>8} {'median':>8}   friendscrape / client: min  median")
    medians = {}
    for client in CLIENTS:
        ratios = [
            ours / theirs for ours, theirs in zip(us["friendscrape"], us[client], strict=True)
        ]
        medians[client] = statistics.median(ratios)
        print(
            f"{client:>14} {min(us[client]):8.0f} {statistics.median(us[client]):8.0f}"
            f"   {min(ratios):26.2f} {medians[client]:7.2f}"
        )
    return medians


def floor_checks(sources: tuple[str, ...] = tuple(FLOOR_USERS)) -> dict[str, bool]:
    """The floor tables of ``sources`` (both by default), and the x-api target."""
    ratios = {source: print_floor(source, floor(source)) for source in sources}
    if "x-api" not in ratios:
        return {}
    return {
        f"x-api: <= {X_API_MAX_RATIO}x the CPU per page of the bare aiohttp client (median)": (
            ratios["x-api"]["aiohttp"] <= X_API_MAX_RATIO
        )
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--trial":
        print(json.dumps(asyncio.run(one(int(sys.argv[2])))))
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "--floor-trial":
        source, base_url, users_csv = sys.argv[2:]
        print(json.dumps(asyncio.run(floor_trial(source, base_url, Path(users_csv)))))
        return 0
    if len(sys.argv) in (2, 3) and sys.argv[1] == "--floor":
        if len(sys.argv) == 3 and sys.argv[2] not in FLOOR_USERS:
            print(f"collector.py: --floor takes one of {', '.join(FLOOR_USERS)}", file=sys.stderr)
            return 2
        checks = floor_checks(tuple(sys.argv[2:]) or tuple(FLOOR_USERS))
        for name, ok in checks.items():
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
        return 0 if all(checks.values()) else 1
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
    checks.update(floor_checks())
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
