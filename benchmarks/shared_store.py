"""Several `friendscrape run` workers on one machine sharing one SQLite store: the writer's
lock wait per saved result with 1, 2 and 4 workers.

One job of WORKERS x USERS users of the simulator's graph (HTML source) is planned in as
many partitions as workers; each worker is `friendscrape run --partition N` in a process
of its own, against a pre-rendered server of its own (benchmarks/prerendered.py) at
latency 0, so the store is the only thing the workers share. Each worker times the
``BEGIN IMMEDIATE`` of its writes: the wait for the store's write lock (SQLite's busy
handler sleeps inside it while another worker writes). Target: at 4 workers the lock
wait is under 5% of each worker's run time. Timing figures, from a machine shared with
other work: they move from run to run.

    python benchmarks/shared_store.py              # 1, 2 and 4 workers, PASS/FAIL
    python benchmarks/shared_store.py --workers 4  # one size
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from friendscrape.commands.bench import one_partition_job
from friendscrape.stores.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
USERS = 100  # per worker: about 2,900 HTML pages each
SIZES = (1, 2, 4)
MAX_LOCK_SHARE = 0.05


class _TimedConnection(sqlite3.Connection):
    """Adds up the seconds spent taking the write lock (``BEGIN IMMEDIATE``) and the
    seconds it is held (to the end of the ``COMMIT``)."""

    waited = 0.0
    held = 0.0
    writes = 0
    _taken = 0.0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("BEGIN IMMEDIATE"):
            started = time.perf_counter()
            try:
                return super().execute(sql, *args)
            finally:
                _TimedConnection._taken = time.perf_counter()
                _TimedConnection.waited += _TimedConnection._taken - started
                _TimedConnection.writes += 1
        if sql == "COMMIT" and _TimedConnection._taken:
            try:
                return super().execute(sql, *args)
            finally:
                _TimedConnection.held += time.perf_counter() - _TimedConnection._taken
                _TimedConnection._taken = 0.0
        return super().execute(sql, *args)


def worker(argv: list[str]) -> int:
    """`friendscrape run` with ``argv``, the store's connections timed; prints JSON."""
    from friendscrape import cli  # noqa: PLC0415 - after the patch below is in place

    connect = sqlite3.connect

    def timed(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, **kwargs, factory=_TimedConnection)

    sqlite3.connect = timed  # type: ignore[assignment]
    started = time.monotonic()

    def report() -> None:
        wall = time.monotonic() - started
        figures = {
            "lock_wait": _TimedConnection.waited,
            "lock_held": _TimedConnection.held,
            "writes": _TimedConnection.writes,
        }
        print(json.dumps({**figures, "wall": wall}), flush=True)

    atexit.register(report)
    return cli.main(["run", *argv])


def _server(users: int, users_csv: Path | None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, str(HERE / "prerendered.py"), "--users", str(users)]
    if users_csv is not None:
        command += ["--users-csv", str(users_csv)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    ready = server.stdout.readline().split()
    if not ready or ready[0] != "READY":
        msg = f"pre-rendered server did not start: {ready!r}"
        raise RuntimeError(msg)
    return server, f"http://127.0.0.1:{ready[1]}"


async def _job(db: Path, users_csv: Path, partitions: int) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        await one_partition_job(store, users_csv)
        await store.plan_partitions(partitions)
    finally:
        await store.close()


def trial(workers: int) -> list[dict[str, float]]:
    """``workers`` workers collecting one partition each of one store: their figures."""
    with tempfile.TemporaryDirectory(prefix="friendscrape-shared-") as tmp:
        db, users_csv = Path(tmp) / "shared.db", Path(tmp) / "users.csv"
        servers = [_server(workers * USERS, users_csv if i == 0 else None) for i in range(workers)]
        try:
            asyncio.run(_job(db, users_csv, workers))
            runs = [
                subprocess.Popen(
                    [
                        *(sys.executable, __file__, "--worker"),
                        *("--store", f"sqlite:///{db}", "--partition", str(i + 1)),
                        *("--base-url", base_url, "--log-level", "warning"),
                        *("--grace-period", "0", "--source", "twitter-mobile"),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for i, (_, base_url) in enumerate(servers)
            ]
            results = []
            for run in runs:
                out, _ = run.communicate()
                if run.returncode:
                    msg = f"a worker ended with exit {run.returncode}"
                    raise RuntimeError(msg)
                results.append(json.loads(out.strip().splitlines()[-1]))
            saved = sqlite3.connect(db).execute("SELECT COUNT(*) FROM user_friends").fetchone()
        finally:
            for server, _ in servers:
                server.terminate()
                server.communicate(timeout=30)
    if saved[0] != workers * USERS:
        msg = f"{saved[0]} results saved of {workers * USERS}"
        raise RuntimeError(msg)
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, choices=SIZES, action="append")
    sizes = tuple(parser.parse_args().workers or SIZES)
    print(f"Workers sharing one SQLite store, {USERS} users each (HTML source, latency 0)")
    print(
        f"{'workers':>8} {'lock wait ms/result':>20} {'lock wait / run time':>22}"
        f" {'lock held ms/result':>20} {'run s':>7}"
    )
    shares = {}
    for workers in sizes:
        results = trial(workers)
        per_result = sum(r["lock_wait"] for r in results) / (workers * USERS) * 1e3
        shares[workers] = max(r["lock_wait"] / r["wall"] for r in results)
        held = sum(r["lock_held"] for r in results) / (workers * USERS) * 1e3
        wall = max(r["wall"] for r in results)
        print(
            f"{workers:>8} {per_result:>20.2f} {shares[workers]:>21.1%} {held:>20.2f} {wall:>7.1f}"
        )
    if max(sizes) < 4:
        return 0
    ok = shares[4] < MAX_LOCK_SHARE
    print(f"{'PASS' if ok else 'FAIL'}  4 workers: lock wait under 5% of each worker's run time")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
