"""Waves: what a wave adds to the store, how fast the changes export runs, and how long
`waves new` takes on a large job.

1. Size. A job of USERS users of the simulator's graph (its list sizes, lists cut at
   2,000 names) collected in wave 1, then a second wave in which 0 %, 5 % or 50 % of the
   ok lists changed (one name added or dropped), saved through the store's own save:
   the SQLite file's growth (write-ahead log checkpointed) and the BigQuery logical
   bytes of the rows appended (BigQuery's data-size rules, as storage_size.py), each as
   a share of the first wave's. Target: a 5 % wave adds at most 10 % of wave 1's bytes.
2. Changes export. A synthetic job of --export-users users (20 names a list) in two
   waves, 5 % of the lists changed in the second, saved through the store's save; then
   `friendscrape export --format changes` run as a process of its own: users compared a
   minute, and its peak memory (max RSS). Targets: >= 200,000 users a minute, < 200 MB.
   `make bench` runs 200,000 users (building a million-user store through the save path
   takes some 20 minutes on a 2-core machine); `--export-users 1000000` runs the
   issue's size.
3. `waves new` on a store of --new-users users (3.6M by default) with one result each,
   written straight into the tables (the command reads neither): seconds, as a process
   of its own. Target: under 10 s.

    python benchmarks/waves.py [--users N] [--export-users N] [--new-users N]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from friendscrape.models import FriendList, Status, User
from friendscrape.simulator.graph import AccountKind, SyntheticGraph
from friendscrape.stores.bigquery_waves import Previous, wave_fields
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.waves import list_hash
from storage_size import bigquery_row, file_size, row_bytes  # one way to count bytes

USERS = 5_000
EXPORT_USERS = 200_000
NEW_USERS = 3_600_000
MAX_FRIENDS = 2_000
BATCH = 500
SIZE_TARGET = 0.10
RATE_TARGET = 200_000
MEMORY_TARGET_MB = 200
NEW_TARGET_S = 10.0
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _result(user: str, names: Sequence[str], n: int, wave: int, *, ok: bool) -> FriendList:
    start = T0 + timedelta(days=7 * (wave - 1), seconds=n)
    return FriendList(
        user_id=user,
        screen_name=f"u{user}",
        status=Status.OK if ok else Status.NOT_FOUND,
        source="twitter-mobile",
        partition=1,
        start_at=start,
        end_at=start + timedelta(seconds=3),
        friend_names=tuple(names),
        following_count=len(names) if ok else None,
        error=None if ok else "not_found",
    )


def _changed(names: Sequence[str], n: int) -> list[str]:
    """A list one follow different: every other one gains a name, the rest lose one."""
    if n % 2 or not names:
        return [*names, f"new_{n}"]
    return list(names[:-1])


def _graph_results(graph: SyntheticGraph, wave: int, share: float) -> Iterator[FriendList]:
    every = round(1 / share) if share else 0
    for n, account in enumerate(graph.accounts()):
        ok = account.kind is AccountKind.OK
        names = graph.listing(account, 0, min(account.following_count, MAX_FRIENDS)) if ok else []
        if ok and every and n % every == 0:
            names = _changed(names, n)
        yield _result(account.user_id, names, n, wave, ok=ok)


async def _save_all(path: Path, results: Iterator[FriendList], *, new_wave: bool) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        if new_wave:
            await store.open_wave(datetime.now(UTC))
        batch: list[FriendList] = []
        for result in results:
            batch.append(result)
            if len(batch) >= BATCH:
                await store.save(batch)
                batch = []
        if batch:
            await store.save(batch)
    finally:
        await store.close()


async def _import(path: Path, users: Iterator[User]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        batch: list[User] = []
        for user in users:
            batch.append(user)
            if len(batch) >= 5_000:
                await store.import_users(batch)
                batch = []
        await store.import_users(batch)
        await store.plan_partitions(1)
    finally:
        await store.close()


def _bigquery_wave(results: Iterator[FriendList], wave: int, before: dict[str, Previous]) -> int:
    total = 0
    for result in results:
        row = bigquery_row(result)
        row |= wave_fields(result, wave, before.get(result.user_id))
        before[result.user_id] = Previous(row["list_hash"], result.status.value)
        total += row_bytes(row)
    return total


def size_figures(users: int) -> bool:
    graph = SyntheticGraph(users)
    accounts = [User(a.user_id, a.screen_name, a.following_count) for a in graph.accounts()]
    good = True
    with tempfile.TemporaryDirectory() as folder:
        first = Path(folder) / "wave1.db"
        asyncio.run(_import(first, iter(accounts)))
        planned = file_size(first)
        asyncio.run(_save_all(first, _graph_results(graph, 1, 0.0), new_wave=False))
        wave1 = file_size(first) - planned
        before: dict[str, Previous] = {}
        bq1 = _bigquery_wave(_graph_results(graph, 1, 0.0), 1, before)
        print(f"{users:,} users; wave 1: SQLite {wave1:,} bytes, BigQuery {bq1:,} logical bytes")
        for share in (0.0, 0.05, 0.5):
            path = Path(folder) / f"wave2_{share}.db"
            shutil.copy(first, path)
            asyncio.run(_save_all(path, _graph_results(graph, 2, share), new_wave=True))
            added = file_size(path) - planned - wave1
            bq2 = _bigquery_wave(_graph_results(graph, 2, share), 2, dict(before))
            line = (
                f"a wave with {share:4.0%} of lists changed adds: SQLite {added:,} bytes "
                f"({added / wave1:.1%} of wave 1), BigQuery {bq2:,} logical bytes "
                f"({bq2 / bq1:.1%})"
            )
            print(line)
            if share == 0.05:
                ok = added <= SIZE_TARGET * wave1 and bq2 <= SIZE_TARGET * bq1
                good = good and ok
                print(
                    f"{'PASS' if ok else 'FAIL'}  a 5% wave adds <= {SIZE_TARGET:.0%} of wave 1's"
                    f" bytes (SQLite {added / wave1:.1%}, BigQuery {bq2 / bq1:.1%})"
                )
    return good


def _synthetic(users: int, wave: int) -> Iterator[FriendList]:
    for n in range(users):
        user = str(10_000 + n)
        names = [f"f{(n * 7 + k) % 100_003}" for k in range(20)]
        if wave > 1 and n % 20 == 0:
            names = _changed(names, n)
        yield _result(user, names, n, wave, ok=True)


def export_figures(users: int) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.db"
        started = time.monotonic()
        asyncio.run(_import(path, (User(str(10_000 + n), f"u{10_000 + n}") for n in range(users))))
        asyncio.run(_save_all(path, _synthetic(users, 1), new_wave=False))
        asyncio.run(_save_all(path, _synthetic(users, 2), new_wave=True))
        built = time.monotonic() - started
        out = Path(folder) / "changes.csv"
        command = [
            sys.executable, "-m", "friendscrape.cli", "export", "--format", "changes",
            "--store", f"sqlite:///{path}", "--output", str(out),
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if done.returncode != 0:
            print(f"FAIL  changes export exited {done.returncode}: {done.stderr[-500:]}")
            return False
        rows = sum(1 for _ in out.open()) - 1
    rate = users / seconds * 60
    print(
        f"changes export, {users:,} users (5% of lists changed, store built in {built:.0f} s):"
        f" {rows:,} changes in {seconds:.1f} s, {rate:,.0f} users/min, peak {peak_mb:.0f} MB"
        + (" (an earlier child's peak)" if before / 1024 > peak_mb else "")
    )
    fast, small = rate >= RATE_TARGET, peak_mb < MEMORY_TARGET_MB
    print(
        f"{'PASS' if fast else 'FAIL'}  changes export >= {RATE_TARGET:,} users/min ({rate:,.0f})"
    )
    print(
        f"{'PASS' if small else 'FAIL'}  changes export peak < {MEMORY_TARGET_MB} MB"
        f" ({peak_mb:.0f})"
    )
    return fast and small


def _big_store(path: Path, users: int) -> None:
    conn = sqlite3.connect(path)
    conn.close()
    asyncio.run(_open_close(path))  # the store's own tables and indexes
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (user_id, screen_name, partition, seq) VALUES (?, ?, 1, ?)",
        ((str(10_000 + n), f"u{n}", n) for n in range(users)),
    )
    stamp = T0.isoformat()
    conn.execute(
        "INSERT INTO partitions VALUES (1, ?, '10000', ?, ?)", (users, str(9_999 + users), stamp)
    )
    empty = list_hash([], [])
    conn.executemany(
        """INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names,
               friend_ids, truncated, status, source, partition, attempts, start_at, end_at,
               wave, list_hash)
           VALUES (?, '', 0, '[]', '[]', 0, 'ok', 'twitter-mobile', 1, 1, ?, ?, 1, ?)""",
        ((str(10_000 + n), stamp, stamp, empty) for n in range(users)),
    )
    conn.execute("COMMIT")
    conn.close()


async def _open_close(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()


def new_wave_figures(users: int) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.db"
        _big_store(path, users)
        command = [
            sys.executable, "-m", "friendscrape.cli", "waves", "new",
            "--store", f"sqlite:///{path}",
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
    ok = done.returncode == 0 and seconds < NEW_TARGET_S
    print(
        f"waves new at {users:,} users: {seconds:.2f} s"
        f" ({done.stdout.strip() or done.stderr[-300:]})"
    )
    print(
        f"{'PASS' if ok else 'FAIL'}  waves new at {users:,} users"
        f" < {NEW_TARGET_S:.0f} s ({seconds:.2f})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--export-users", type=int, default=EXPORT_USERS)
    parser.add_argument("--new-users", type=int, default=NEW_USERS)
    parser.add_argument(
        "--parts", default="size,export,new", help="which parts to run (default: all three)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    sizes = "size" not in parts or size_figures(args.users)
    export = "export" not in parts or export_figures(args.export_users)
    new = "new" not in parts or new_wave_figures(args.new_users)
    return 0 if sizes and export and new else 1


if __name__ == "__main__":
    sys.exit(main())
