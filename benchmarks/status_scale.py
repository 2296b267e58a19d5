"""`status` on a large job: CPU seconds of `friendscrape status` as its own process.

The store is written straight with SQL (no runs), as report_scale.py writes it: N users
of a few friends each (status reads no friend list), their results spread over days.
Two moments of a job are measured, each as a run leaves the store between two saves:

- wave 1: every user collected;
- wave 2: a second wave opened and a third of the users collected again in it (status
  counts the current wave's results only).

The store records its job's platform, as `users import --source` does (a store of an
older version records none, and status then counts every result's source: a line
says what that costs). The spread of results over time rewrites every row, so each
group's first start and last end is stale (counted again by status from the indexes,
a line says at what cost) until the store is next opened to write, as a run's start does.

Status reads the store's running totals (kept by triggers as rows are written, so the
SQL here keeps them too). Two "before" lines follow, on the wave-2 store: without the
totals (a store of an older version, read-only: status counts every result from an
index), then also with the wave index of an older version (``user_friends_wave``,
without the figures), which made status read every result row.

Target (issue: status during a run on a 3.6M-user store): under 2 s of CPU. The rows
here are narrow; in a real store a result row is some 4 KB, which the "before" wave-2
figure reads once per result of the wave (its bytes are printed too).

    python benchmarks/status_scale.py                    # 3,600,000 users
    python benchmarks/status_scale.py --users 100000     # while developing
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from friendscrape.configdoc import environ_without_configuration
from friendscrape.stores.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's store builder
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_scale import spread
from synthetic import build

CPU_LIMIT_S = 2.0


def status_cpu(store: Path) -> tuple[float, float, float]:
    """CPU seconds, wall seconds and MB read of one `friendscrape status --json`."""
    command = [sys.executable, "-m", "friendscrape.cli", "status", "--json"]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*command, "--store", f"sqlite:///{store}"],
        env=environ_without_configuration(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    assert proc.stderr is not None
    error = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        msg = f"status failed: {error.strip()}"
        raise SystemExit(msg)
    # Blocks read from the disk (512 bytes each): 0 when the pages were cached.
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_inblock * 512 / 1e6


def second_wave(store: Path) -> None:
    """Open wave 2 as `waves new` does, then a third of the users collected again."""

    async def opened() -> None:
        sqlite = SqliteStore(store)
        await sqlite.open()
        try:
            await sqlite.open_wave(datetime(2024, 2, 1, tzinfo=UTC))
        finally:
            await sqlite.close()

    asyncio.run(opened())
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        conn.execute("UPDATE user_friends SET wave = 2 WHERE rowid % 3 = 0")
    finally:
        conn.close()


def opened_to_write(store: Path, platform: str | None = None) -> None:
    """Open the store as a run's start does (stale times counted again), recording the
    job's platform as `users import --source` does."""

    async def opened() -> None:
        sqlite = SqliteStore(store)
        await sqlite.open()
        try:
            if platform is not None:
                await sqlite.record_platform(platform)
        finally:
            await sqlite.close()

    asyncio.run(opened())


def no_platform(store: Path) -> None:
    """The job's platform unrecorded, as in a store of an older version."""
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        conn.execute("DELETE FROM job WHERE key = 'platform'")
    finally:
        conn.close()


def without_totals(store: Path) -> None:
    """The store as an older version left it: no running totals (status counts rows)."""
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN"
            " ('user_friends', 'users', 'wave_history')"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE result_totals")
        conn.execute("DROP TABLE history_totals")
    finally:
        conn.close()


def older_wave_index(store: Path) -> None:
    """The wave index as the previous version left it: order only, no figures."""
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        conn.execute("DROP INDEX user_friends_wave_totals")
        conn.execute(
            "CREATE INDEX user_friends_wave ON user_friends (wave, length(user_id), user_id)"
        )
    finally:
        conn.close()


def measured(label: str, store: Path, *, target: bool) -> bool:
    cpu, wall, read = status_cpu(store)
    line = f"{label}: {cpu:.2f}s CPU, {wall:.1f}s wall, {read:.0f} MB read from disk"
    if not target:
        print(line, flush=True)
        return True
    met = cpu < CPU_LIMIT_S
    print(f"{line}: {'PASS' if met else 'FAIL'} (under {CPU_LIMIT_S:.0f}s CPU)", flush=True)
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3_600_000)
    parser.add_argument("--dir", type=Path, help="folder for the store (default: a temp one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        store = Path(folder) / "status-scale.db"
        started = time.monotonic()
        build(store, users=args.users, friends=5)
        opened_to_write(store, "twitter-mobile")
        spread(store, args.users)
        print(
            f"store: {args.users:,} collected users, {store.stat().st_size / 1e9:.2f} GB, "
            f"built in {time.monotonic() - started:.0f}s",
            flush=True,
        )
        measured("status, wave 1, every group's times stale", store, target=False)
        opened_to_write(store)
        met = measured("status, wave 1", store, target=True)
        second_wave(store)
        met = measured("status, wave 2", store, target=True) and met
        no_platform(store)
        measured("status, wave 2, no platform recorded (sources counted)", store, target=False)
        without_totals(store)
        measured("status, wave 2, before (no totals: every result counted)", store, target=False)
        older_wave_index(store)
        measured("status, wave 2, before (no totals, the older wave index)", store, target=False)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
