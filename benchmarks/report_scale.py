"""`report` on a large job: seconds and peak RSS of `friendscrape report` as its own process.

The store is written straight with SQL (no runs): N collected users of a few friends each
(the report reads no friend list), their results spread over days, 1 in 97 failed with a
timeout, 1 in 50 lists truncated. Target (issue: a report people would send): peak RSS
under 200 MB at 3,600,000 users, so the report runs on a 512 MB worker: it reads
aggregates the store counts, never one row per user.

    python benchmarks/report_scale.py                    # 3,600,000 users
    python benchmarks/report_scale.py --users 100000     # while developing
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from friendscrape.configdoc import environ_without_configuration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's store builder
from synthetic import build

RSS_LIMIT_MB = 200.0


def spread(store: Path, users: int) -> None:
    """Results over time (0.2 s apart, ten days for 3.6M users), some failed or truncated."""
    conn = sqlite3.connect(store, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        step = 864_000 / max(users, 1)  # ten days across the job
        conn.execute(
            """UPDATE user_friends SET
                 start_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', '2024-01-01',
                                     '+' || (rowid * ?) || ' seconds'),
                 end_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', '2024-01-01',
                                   '+' || (rowid * ? + 3) || ' seconds'),
                 status = CASE WHEN rowid % 97 = 0 THEN 'failed' ELSE 'ok' END,
                 error = CASE WHEN rowid % 97 = 0 THEN 'timeout after retries: x' END,
                 truncated = CASE WHEN rowid % 50 = 0 THEN 1 ELSE 0 END""",
            (step, step),
        )
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3_600_000)
    parser.add_argument("--dir", type=Path, help="folder for the store (default: a temp one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        store = Path(folder) / "report-scale.db"
        started = time.monotonic()
        build(store, users=args.users, friends=5)
        spread(store, args.users)
        print(
            f"store: {args.users:,} collected users, {store.stat().st_size / 1e9:.2f} GB, "
            f"built in {time.monotonic() - started:.0f}s",
            flush=True,
        )
        out = Path(folder) / "report.html"
        started = time.monotonic()
        command = [sys.executable, "-m", "friendscrape.cli", "report"]
        proc = subprocess.Popen(
            [*command, "--store", f"sqlite:///{store}", "--output", str(out)],
            env=environ_without_configuration(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        assert proc.stderr is not None
        error = proc.stderr.read().decode()
        proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            msg = f"report failed: {error.strip()}"
            raise SystemExit(msg)
        peak = usage.ru_maxrss / 1024
        page = out.stat().st_size / 1e3
        print(f"report: {seconds:.1f}s, peak RSS {peak:.1f} MB, page {page:.0f} kB", flush=True)
    if peak > RSS_LIMIT_MB:
        print(f"MISSED report: peak RSS {peak:.0f} MB > {RSS_LIMIT_MB:.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
