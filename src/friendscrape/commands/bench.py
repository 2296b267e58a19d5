"""`friendscrape bench`: timed trials over a grid of concurrency values, as the original
team sized their job, against the local simulator.

Each trial starts the simulator in its own process (simulator.process, so the figures
measured here, peak memory above all, are the collector's own), imports its users into a
fresh temporary SQLite store, plans one partition and runs it (core.assemble.build_run,
as `friendscrape run` does) until every user is collected or ``duration`` seconds have
passed.

The simulator is imported only when a trial starts: only demo, bench and simulate load
it. The options, and the grid of trials they set, are ``bench_options``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from friendscrape.commands.bench_options import TrialConfig
from friendscrape.commands.import_users import ImportReport, read_users
from friendscrape.config import Settings
from friendscrape.core.assemble import build_run
from friendscrape.errors import FriendscrapeError, UsageError
from friendscrape.stores.sqlite import SqliteStore

_START_TIMEOUT = 60.0
_RSS_EVERY = 0.25


class TrialError(FriendscrapeError):
    """The simulator of a trial could not be started or read."""


@dataclass(frozen=True, slots=True)
class TrialResult:
    """What one trial measured."""

    concurrency: int
    users: int
    seconds: float
    friends: int
    pages: int
    requests: int
    rate_limited: int
    peak_rss_mb: float
    cpu_seconds: float = 0.0
    # From ``warmup`` seconds in to the stop: the pace a long run holds.
    steady_seconds: float = 0.0
    steady_pages: int = 0
    steady_cpu_seconds: float = 0.0

    @property
    def cpu_us_per_page(self) -> float | None:
        """Collector CPU (HTTP, parsing, saving) per page fetched, in microseconds."""
        return self.cpu_seconds / self.pages * 1e6 if self.pages else None

    @property
    def pages_per_s(self) -> float:
        """Pages fetched per second of the trial."""
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def minutes(self) -> float:
        """Wall minutes of the trial."""
        return self.seconds / 60

    @property
    def wall_seconds_per_user(self) -> float | None:
        """Wall seconds of the trial per user collected (the inverse of throughput; not
        the time one user takes, which `status` shows as latency per user)."""
        return self.seconds / self.users if self.users else None

    @property
    def friends_per_user(self) -> float | None:
        """Names collected per user."""
        return self.friends / self.users if self.users else None

    @property
    def users_per_min(self) -> float:
        """Users collected per minute."""
        return self.users * 60 / self.seconds if self.seconds > 0 else 0.0

    @property
    def share_429(self) -> float:
        """Share of the simulator's requests answered with HTTP 429."""
        return self.rate_limited / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        """The figures of one row of `bench --json`."""
        return {
            **asdict(self),
            "minutes": round(self.minutes, 3),
            "wall_seconds_per_user": self.wall_seconds_per_user,
            "friends_per_user": self.friends_per_user,
            "users_per_min": round(self.users_per_min, 2),
            "users_per_hour": round(self.users_per_min * 60, 1),
            "users_per_day": round(self.users_per_min * 1440, 0),
            "share_429": round(self.share_429, 4),
        }


def _rss_mb() -> float:
    """Resident memory now, from /proc; the process's peak where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _watch_rss(peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], _rss_mb())
        await asyncio.sleep(_RSS_EVERY)


@contextlib.asynccontextmanager
async def simulator_process(config: TrialConfig, users_csv: Path) -> AsyncIterator[str]:
    """Run ``python -m friendscrape.simulator`` on a free local port; yield its base URL."""
    from friendscrape.simulator import SimConfig  # noqa: PLC0415 - see top
    from friendscrape.simulator.process import (  # noqa: PLC0415
        SimulatorStartError,
        start_simulator_process,
    )

    served = SimConfig(
        users=config.users,
        seed=config.seed,
        latency=config.latency,
        mean_friends=config.mean_friends,
        rate_limit_rate=config.rate_limit_rate,
    )
    # Starting and stopping it wait on the process: in a thread, so the loop stays free.
    try:
        sim = await asyncio.to_thread(
            start_simulator_process, served, timeout=_START_TIMEOUT, write_users=users_csv
        )
    except SimulatorStartError as exc:
        raise TrialError(str(exc)) from None
    try:
        yield sim.base_url
    finally:
        await asyncio.to_thread(sim.stop)


async def one_partition_job(store: SqliteStore, users_csv: Path) -> None:
    """Import ``users_csv`` into an open store and plan it as one partition: the job a
    trial (and the CPU floor benchmark) collects."""
    report = ImportReport()
    for chunk in read_users(users_csv, report):
        await store.import_users(chunk)
    await store.plan_partitions(1)


async def run_trial(config: TrialConfig, concurrency: int, workdir: Path) -> TrialResult:
    """One trial at ``concurrency``: fresh simulator process, fresh SQLite store."""
    from friendscrape.simulator.process import control_json  # noqa: PLC0415 - see top

    users_csv = workdir / f"users-{concurrency}.csv"
    db = workdir / f"trial-{concurrency}.db"
    async with simulator_process(config, users_csv) as base_url:
        settings = Settings.model_validate(
            {
                "store": f"sqlite:///{db}",
                "base_url": base_url,
                "source": "twitter-mobile",
                "concurrency": concurrency,
                "progress_interval": 3600.0,
                "grace_period": 0.0,
            }
        )
        store = SqliteStore(db)
        await store.open()
        try:
            await one_partition_job(store, users_csv)
            stop = asyncio.Event()
            runner = build_run(settings, store, 1, stop=stop)  # as `friendscrape run` builds it
            stats = runner.stats
            peak = [_rss_mb()]
            watcher = asyncio.create_task(_watch_rss(peak))
            loop = asyncio.get_running_loop()
            marks: list[tuple[float, int, float]] = []  # (monotonic, pages, CPU seconds)

            def mark() -> None:
                marks.append((time.monotonic(), stats.pages, time.process_time()))

            def finish() -> None:
                mark()
                stop.set()

            timers = [loop.call_later(config.duration, finish)]
            if 0 < config.warmup < config.duration:
                timers.append(loop.call_later(config.warmup, mark))
            cpu_before = time.process_time()
            try:
                summary = await runner.run()
            finally:
                for timer in timers:
                    timer.cancel()
                watcher.cancel()
            cpu_seconds = time.process_time() - cpu_before
            peak[0] = max(peak[0], _rss_mb())
        finally:
            await store.close()
        served = await control_json(base_url, "stats")
    by_status = served.get("by_status", {})
    return TrialResult(
        concurrency=concurrency,
        users=summary.users,
        seconds=summary.seconds,
        friends=summary.friends,
        pages=summary.pages,
        requests=int(served.get("total", 0)),
        rate_limited=int(by_status.get("429", 0)),
        peak_rss_mb=round(peak[0], 1),
        cpu_seconds=round(cpu_seconds, 3),
        **_steady(marks),
    )


def _steady(marks: list[tuple[float, int, float]]) -> dict[str, Any]:
    """The figures between the warm-up mark and the stop mark, when both were reached."""
    if len(marks) < 2:
        return {}
    (t0, pages0, cpu0), (t1, pages1, cpu1) = marks[0], marks[-1]
    return {
        "steady_seconds": round(t1 - t0, 3),
        "steady_pages": pages1 - pages0,
        "steady_cpu_seconds": round(cpu1 - cpu0, 3),
    }


def _quiet(_text: str) -> None:
    """Progress lines go nowhere unless the caller shows them."""


async def run_trials(
    config: TrialConfig, *, say: Callable[[str], None] = _quiet
) -> list[TrialResult]:
    """Every trial of the grid, one after another (trials side by side would compete).
    ``say`` gets a line as each trial starts and one as it ends, for people to follow."""
    if not config.concurrency or min(config.concurrency) < 1:
        msg = "--concurrency needs positive values, e.g. 10,50,200"
        raise UsageError(msg)
    results = []
    count = len(config.concurrency)
    with tempfile.TemporaryDirectory(prefix="friendscrape-bench-") as tmp:
        for number, concurrency in enumerate(config.concurrency, start=1):
            say(
                f"trial {number}/{count}: concurrency {concurrency}, "
                f"up to {config.duration:g}s against the simulator..."
            )
            result = await run_trial(config, concurrency, Path(tmp))
            results.append(result)
            say(f"trial {number}/{count} done: {render_trial(result)}")
    return results


def render_trial(r: TrialResult) -> str:
    """One trial's figures as a sentence (the table's row, in words)."""
    return (
        f"concurrency {r.concurrency}: {r.users} users in {r.seconds:.1f}s, "
        f"{r.users_per_min:,.1f} users/min, peak RSS {r.peak_rss_mb:.0f} MB, "
        f"{r.share_429:.1%} answered 429 (simulator figures)"
    )


def parse_grid(text: str) -> tuple[int, ...]:
    """``10,50,200`` as numbers (UsageError otherwise)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        msg = f"--concurrency must be numbers separated by commas, got {text!r}"
        raise UsageError(msg) from None
    if not values or min(values) < 1:
        msg = f"--concurrency must be positive numbers, got {text!r}"
        raise UsageError(msg)
    return values


def render(config: TrialConfig, results: Sequence[TrialResult]) -> str:
    """The trial table, one row per concurrency value."""
    lines = [
        (
            f"simulated upstream: {config.users} users, {config.latency:g}s per page, "
            f"mean {config.mean_friends:g} friends; each trial stops after {config.duration:g}s"
        ),
        (
            f"{'conc.':>6} {'users':>6} {'minutes':>8} {'wall s/user':>11} {'friends/u':>9} "
            f"{'users/min':>9} {'users/hour':>10} {'users/day':>10} {'peak RSS':>9} {'429':>6}"
        ),
    ]
    for r in results:
        spu = f"{r.wall_seconds_per_user:.3f}" if r.wall_seconds_per_user is not None else "-"
        fpu = f"{r.friends_per_user:.1f}" if r.friends_per_user is not None else "-"
        lines.append(
            f"{r.concurrency:>6} {r.users:>6} {r.minutes:>8.2f} {spu:>11} {fpu:>9} "
            f"{r.users_per_min:>9,.1f} {r.users_per_min * 60:>10,.0f} "
            f"{r.users_per_min * 1440:>10,.0f} {r.peak_rss_mb:>7.0f}MB {r.share_429:>6.1%}"
        )
    return "\n".join(lines)
