"""CPU that the SQLite store's running totals add to a save: the same saves into two
stores of one plan, one with the totals (their triggers, their index ``user_friends_end``
and each save's count of the rows it adds) and one without, alternating, in one process
(ratios of one run, not of two).

USERS users planned in 10 partitions; each repetition saves BATCHES batches of BATCH
lists (200-900 names, x-api's shape with ids or twitter-mobile's names only) into
each store, the first batch of each untimed (it builds the save's filter). Figures:
process CPU seconds per repetition, and the ratio with/without of their median and
minimum. Target: at most 1.05.

    python benchmarks/totals_save.py
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from friendscrape.models import FriendList, Status, User
from friendscrape.stores import sqlite_totals
from friendscrape.stores.sqlite import SqliteStore

USERS = 20_000
BATCH = 100
BATCHES = 40
REPS = 4
LIMIT = 1.05
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def result(i: int, *, ids: bool) -> FriendList:
    """User ``i``'s result: 200-900 friends, with upstream ids or names only."""
    n = 200 + i % 700
    names = tuple(f"name{(i * 31 + k) % 99991}" for k in range(n))
    return FriendList(
        user_id=str(1000 + i),
        screen_name=f"u{i}",
        status=Status.OK,
        source="x-api" if ids else "twitter-mobile",
        partition=1 + i % 10,
        start_at=T0 + timedelta(seconds=i),
        end_at=T0 + timedelta(seconds=i, milliseconds=1500),
        friend_names=names,
        friend_ids=tuple(str(9_000_000 + (i * 31 + k) % 99991) for k in range(n)) if ids else (),
    )


async def make(path: Path, *, totals: bool) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(str(1000 + i), f"u{i}") for i in range(USERS)])
    await store.plan_partitions(10)
    await store.close()
    if not totals:
        conn = sqlite3.connect(path)
        for name in sqlite_totals.TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP INDEX user_friends_end")
        conn.close()


async def saves(path: Path, start: int, *, ids: bool) -> float:
    """CPU seconds of BATCHES - 1 saves (after one untimed)."""
    batches = [
        [result(start + b * BATCH + k, ids=ids) for k in range(BATCH)] for b in range(BATCHES)
    ]
    # A store without triggers is not "older": opened to write, it would get them back
    # (and its saves would count their rows: a store not migrated keeps no totals).
    store = SqliteStore(path)
    store_open = sqlite_totals.migrate
    if "without" in path.name:
        sqlite_totals.migrate = lambda _conn: None  # type: ignore[assignment]
    try:
        await store.open()
    finally:
        sqlite_totals.migrate = store_open
    try:
        await store.save(batches[0])
        started = time.process_time()
        for batch in batches[1:]:
            await store.save(batch)
        return time.process_time() - started
    finally:
        await store.close()


async def measure(folder: Path, *, ids: bool) -> bool:
    with_db, without_db = folder / "with.db", folder / "without.db"
    await make(with_db, totals=True)
    await make(without_db, totals=False)
    cpu: dict[Path, list[float]] = {with_db: [], without_db: []}
    for rep in range(REPS):
        order = (with_db, without_db) if rep % 2 == 0 else (without_db, with_db)
        for path in order:
            cpu[path].append(await saves(path, rep * BATCH * BATCHES, ids=ids))
    median = statistics.median(cpu[with_db]) / statistics.median(cpu[without_db])
    low = min(cpu[with_db]) / min(cpu[without_db])
    met = median <= LIMIT
    kind = "x-api lists" if ids else "names-only lists"
    print(
        f"{kind}: with totals {', '.join(f'{c:.2f}' for c in cpu[with_db])} s, without "
        f"{', '.join(f'{c:.2f}' for c in cpu[without_db])} s; ratio {median:.3f} (median), "
        f"{low:.3f} (min): {'PASS' if met else 'FAIL'} (at most {LIMIT})",
        flush=True,
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="folder for the stores (default: a temp one)")
    args = parser.parse_args()
    met = True
    for ids in (True, False):
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            met = asyncio.run(measure(Path(folder), ids=ids)) and met
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
