"""Peak memory of one `friendscrape run` at high concurrency against the simulator.

The simulator and the run are separate processes; the run's peak RSS is read from the
kernel when it exits (wait4), and sampled while it runs for a timeline. The target: at
--concurrency 1000 with --max-friends 2000, peak RSS stays under 400 MB.

    python benchmarks/memory.py                      # the target case
    python benchmarks/memory.py --users 300 --concurrency 200 --page-size 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from friendscrape.configdoc import environ_without_configuration
from friendscrape.models import User
from friendscrape.simulator import SimConfig
from friendscrape.simulator.process import start_simulator_process
from friendscrape.stores.sqlite import SqliteStore

LIMIT_MB = 400.0


@dataclass(frozen=True)
class MemoryResult:
    """What one measured run did."""

    exit_code: int
    peak_rss_mb: float
    sampled_peak_mb: float
    seconds: float
    users: int


def _env(**extra: str) -> dict[str, str]:
    env = environ_without_configuration(os.environ)
    env.update({"FRIENDSCRAPE_LOG_FORMAT": "json", "FRIENDSCRAPE_LOG_LEVEL": "warning"})
    env.update(extra)
    return env


async def _seed(db: Path, config: SimConfig) -> int:
    graph = config.make_graph()
    store = SqliteStore(db)
    await store.open()
    try:
        users = [User(a.user_id, a.screen_name, a.following_count) for a in graph.accounts()]
        await store.import_users(users)
        await store.plan_partitions(1)
    finally:
        await store.close()
    return len(users)


def _high_water_kb(pid: int) -> int:
    """Peak resident memory of a live process, in kB, from /proc (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure(
    *,
    users: int,
    concurrency: int,
    max_friends: int = 2000,
    mean_friends: float = 1000.0,
    page_size: int = 20,
    latency: float = 0.0,
    timeout: float = 900.0,
) -> MemoryResult:
    """Run one partition of ``users`` and report the run process's peak RSS."""
    config = SimConfig(users=users, mean_friends=mean_friends, page_size=page_size, latency=latency)
    sim = start_simulator_process(config, env=_env())
    base_url = sim.base_url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "memory.db"
            count = asyncio.run(_seed(db, config))
            started = time.monotonic()
            run = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "friendscrape.cli",
                    "run",
                    "--store",
                    f"sqlite:///{db}",
                    "--partition",
                    "1",
                    "--source",
                    "twitter-mobile",
                    "--base-url",
                    base_url,
                    "--concurrency",
                    str(concurrency),
                    "--max-friends",
                    str(max_friends),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_env(FRIENDSCRAPE_REQUEST_TIMEOUT="60"),
            )
            sampled = 0
            peak_kb = 0
            proc = psutil.Process(run.pid)
            while True:
                # The kernel's high-water mark of the run's own memory (VmHWM), read while
                # it lives. Not wait4's ru_maxrss, nor a max over reads: both would count
                # the moment between fork and exec, when the child still maps all of its
                # parent's memory. VmHWM restarts at exec and only grows after, so the
                # last read is the run's peak.
                peak_kb = _high_water_kb(run.pid) or peak_kb
                pid, status, _ = os.wait4(run.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - started > timeout:
                    run.kill()
                with contextlib.suppress(psutil.Error):
                    sampled = max(sampled, proc.memory_info().rss)
                # The cadence of a timeline, not an ordering of events: VmHWM keeps the
                # exact peak between two reads.
                time.sleep(0.05)
            run.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - started
            return MemoryResult(run.returncode, peak_kb / 1024, sampled / 2**20, seconds, count)
    finally:
        sim.stop()


def main() -> int:
    """Measure, print a JSON summary, exit 1 when over the limit or the run failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2500)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--max-friends", type=int, default=2000)
    parser.add_argument("--mean-friends", type=float, default=1500.0)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    args = parser.parse_args()
    result = measure(
        users=args.users,
        concurrency=args.concurrency,
        max_friends=args.max_friends,
        mean_friends=args.mean_friends,
        page_size=args.page_size,
        latency=args.latency,
    )
    ok = result.exit_code == 0 and result.peak_rss_mb < args.limit_mb
    print(
        json.dumps(
            {
                "benchmark": "memory",
                "users": result.users,
                "concurrency": args.concurrency,
                "max_friends": args.max_friends,
                "peak_rss_mb": round(result.peak_rss_mb, 1),
                "sampled_peak_mb": round(result.sampled_peak_mb, 1),
                "limit_mb": args.limit_mb,
                "seconds": round(result.seconds, 1),
                "exit_code": result.exit_code,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
