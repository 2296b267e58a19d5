"""How long a run's first save takes on a store of many users (3,600,000 by default).

Saving a names-only list (twitter-mobile) matches each friend to the job's users with a
filter of their ids and names, built once per run. It used to be built by the first save
on the store's own connection: 20-30 s at 3.6M users, while every call of the store
waited. It is now built on a connection of its own in a thread, and saves made meanwhile
let SQLite match every name. Both are measured here, in one process, on one store
(USERS users planned, none collected, as tests/synthetic.py builds them):

- after: the first save of BATCH results (the default --batch-size) on a newly opened
  store; then how long the filter took to be ready, and a save that uses it.
- before: the same first save with the filter built on the store's connection, as
  earlier versions did (run second, so the users' pages are already cached for it).

The lists are the simulator's (its friend-count distribution, cut at 2,000). Target:
the first save within 2 s at 3.6M users.

    python benchmarks/first_save.py [--users N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from friendscrape.models import FriendList, Status
from friendscrape.simulator.graph import AccountKind, SyntheticGraph
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_keys import SaveMatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's store builder
import synthetic

USERS = 3_600_000
BATCH = 100
MAX_FRIENDS = 2_000
TARGET_S = 2.0
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _batch(first: int) -> list[FriendList]:
    """BATCH results of the job's users from ``first`` on, with the simulator's lists."""
    graph = SyntheticGraph(5_000)
    accounts = [a for a in graph.accounts() if a.kind is AccountKind.OK][first : first + BATCH]
    return [
        FriendList(
            user_id=synthetic.user_id(first + n),
            screen_name=synthetic.screen_name(first + n),
            status=Status.OK,
            source="twitter-mobile",
            partition=1,
            start_at=T0 + timedelta(seconds=n),
            end_at=T0 + timedelta(seconds=n + 3),
            friend_names=tuple(graph.listing(a, 0, min(a.following_count, MAX_FRIENDS))),
            following_count=a.following_count,
        )
        for n, a in enumerate(accounts)
    ]


async def _timed_save(store: SqliteStore, batch: list[FriendList]) -> float:
    started = time.perf_counter()
    await store.save(batch)
    return time.perf_counter() - started


async def _after(path: Path) -> tuple[float, float, float]:
    """The first save's seconds, the filter's seconds to be ready, a save's with it."""
    store = SqliteStore(path)
    await store.open()
    try:
        opened = time.perf_counter()
        first = await _timed_save(store, _batch(0))
        thread = store._matcher._thread  # the filter's own thread
        if thread is not None:
            await asyncio.to_thread(thread.join)
        ready = time.perf_counter() - opened
        await store.save(_batch(BATCH))  # takes the finished filter
        with_filter = await _timed_save(store, _batch(2 * BATCH))
    finally:
        await store.close()
    return first, ready, with_filter


async def _before(path: Path) -> float:
    """The first save's seconds with the filter built on the store's connection."""
    store = SqliteStore(path)
    store._matcher = SaveMatcher()  # built at the first save, as before
    await store.open()
    try:
        return await _timed_save(store, _batch(3 * BATCH))
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "first_save.db"
        started = time.perf_counter()
        synthetic.build(path, users=args.users, friends=20, collected=0)
        print(f"store of {args.users:,} users built in {time.perf_counter() - started:.0f} s")
        first, ready, with_filter = asyncio.run(_after(path))
        before = asyncio.run(_before(path))
    print(
        f"first save of {BATCH} results: {first:.2f} s (before: {before:.2f} s, the filter built"
        f" first); filter ready {ready:.1f} s after the store opened; a save with it"
        f" {with_filter:.2f} s"
    )
    ok = first <= TARGET_S
    print(f"{'PASS' if ok else 'FAIL'}  first save at {args.users:,} users <= {TARGET_S} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
