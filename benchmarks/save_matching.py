"""CPU that saving names-only friend lists (twitter-mobile) costs in the SQLite store:
matching each name to the job's users, and the whole save (matching + upsert).

A store of USERS users from the simulator's graph, planned (so lists are matched as they
are saved); LISTS lists of the simulator's friend-count distribution, saved BATCH lists a
save. Their names come from the simulator's name space (nearly all outside the job, as
against the simulator), with a share of them replaced by names of the job's users (a
fifth in upper case) for the other mixes. "before" is SQLite matching every name
(sqlite_graph.resolved_keys, as saves did until the filter); "after" is the save path
(SaveMatcher: a filter of the job's keys, SQLite for the names that pass it). Both
results are checked byte-identical first. Figures: min / median of REPS runs, process
CPU time, in microseconds per 1,000 names and per save.
Targets (ratios of the same run): with no friend a user of the job, "after" saves at
most half what "before" costs; with any share, at most 1.15 times.

    python benchmarks/save_matching.py
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from friendscrape.models import FriendList, Status, User
from friendscrape.simulator.graph import AccountKind, SyntheticGraph
from friendscrape.stores import sqlite_graph as graph
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_keys import SaveMatcher

USERS = 100_000
LISTS = 60
BATCH = 10
MAX_FRIENDS = 5_000  # a few very long lists would be most of the run's time
REPS = 3
SHARES = (0.0, 0.1, 0.5, 0.9)  # share of names replaced by the job's users' names
T0 = datetime(2024, 5, 1, tzinfo=UTC)

Lists = list[tuple[str, str]]


class SqlOnly:
    """The save path before the filter: SQLite matches every name."""

    def prepare(self, conn: sqlite3.Connection, lists: Lists) -> None:
        """Nothing to prepare."""

    def resolved_keys(
        self,
        conn: sqlite3.Connection,
        lists: Lists,
        names: Sequence[Sequence[str]],
        **_with_ids: object,
    ) -> list[tuple[bytes | None, int]]:
        """As saves did: one json_each statement per list (the lists here carry no ids)."""
        del names
        return graph.resolved_keys(conn, lists)


def _batches(sim: SyntheticGraph, share: float) -> list[list[FriendList]]:
    rnd = random.Random(20)
    accounts = [a for a in sim.accounts() if a.kind is AccountKind.OK and a.following_count]
    results = []
    for account in accounts[:LISTS]:
        names = sim.listing(account, 0, min(account.following_count, MAX_FRIENDS))
        for i in range(len(names)):
            if rnd.random() < share:
                name = accounts[rnd.randrange(len(accounts))].screen_name
                names[i] = name.upper() if rnd.random() < 0.2 else name
        results.append(
            FriendList(
                user_id=account.user_id,
                screen_name=account.screen_name,
                status=Status.OK,
                source="twitter-mobile",
                partition=1,
                start_at=T0,
                end_at=T0,
                friend_names=tuple(names),
                friend_ids=(),
                following_count=account.following_count,
                truncated=False,
            )
        )
    return [results[i : i + BATCH] for i in range(0, len(results), BATCH)]


def _lists(batch: Sequence[FriendList]) -> Lists:
    encode = msgspec.json.encode
    return [(encode(r.friend_names).decode(), "[]") for r in batch]


def _cpu(run: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(REPS):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return times


def _line(label: str, times: list[float], names: int, saves: int) -> None:
    per_k = [t / names * 1e9 for t in times]  # microseconds per 1,000 names
    per_save = [t / saves * 1e6 for t in times]
    print(
        f"  {label:24s} {min(per_k):7.0f} / {statistics.median(per_k):7.0f} us per 1,000 names"
        f"   {min(per_save):8.0f} / {statistics.median(per_save):8.0f} us per save"
    )


async def _main() -> bool:
    """Print the figures; True when the filter missed a target."""
    missed = False
    sim = SyntheticGraph(USERS)
    with tempfile.TemporaryDirectory(prefix="friendscrape-save-") as tmp:
        path = Path(tmp) / "save.db"
        store = SqliteStore(path)
        await store.open()
        await store.import_users(
            [User(a.user_id, a.screen_name, a.following_count) for a in sim.accounts()]
        )
        await store.plan_partitions(1)
        conn = store._conn  # the store's own connection (its row factory, its cache)
        assert conn is not None
        matcher = SaveMatcher()
        start = time.process_time()
        matcher.prepare(conn, [('["x"]', "[]")])
        print(
            f"SQLite save of names-only lists, {USERS:,} users (simulator graph, synthetic"
            f" store; this machine): filter built in {time.process_time() - start:.2f} s CPU"
        )
        for share in SHARES:
            batches = _batches(sim, share)
            lists = [_lists(b) for b in batches]
            names = [[r.friend_names for r in b] for b in batches]
            total = sum(len(n) for b in names for n in b)
            conn.execute("BEGIN")
            for ls, ns in zip(lists, names, strict=True):
                assert graph.resolved_keys(conn, ls) == matcher.resolved_keys(conn, ls, ns)
            conn.execute("COMMIT")
            print(
                f"{share:.0%} of names are the job's users: {len(batches) * BATCH} lists,"
                f" {total:,} names, {len(batches)} saves (results identical)"
            )

            def match(m: SaveMatcher | SqlOnly, ls: list[Lists] = lists, ns: list = names) -> None:
                conn.execute("BEGIN")
                for one, its in zip(ls, ns, strict=True):
                    m.resolved_keys(conn, one, its)
                conn.execute("COMMIT")

            async def save(m: SaveMatcher | SqlOnly, bs: list[list[FriendList]] = batches) -> None:
                store._matcher = m  # type: ignore[assignment]
                for batch in bs:
                    await store.save(batch)

            await save(SqlOnly())  # the first save of these users inserts their rows
            for label, m in (("before", SqlOnly()), ("after", matcher)):
                _line(f"match, {label}", _cpu(lambda m=m: match(m)), total, len(batches))
            medians: dict[str, float] = {}
            for label, m in (("before", SqlOnly()), ("after", matcher)):
                times = []
                for _ in range(REPS):
                    start = time.process_time()
                    await save(m)
                    times.append(time.process_time() - start)
                _line(f"save, {label}", times, total, len(batches))
                medians[label] = statistics.median(times)
            # Targets, as ratios of figures of the same run: when the friends are not the
            # job's users (as against the simulator) the save costs at most half as much;
            # otherwise at most 15% more (where most are, the filter cannot help).
            limit = 0.5 if share == 0 else 1.15
            if medians["after"] > limit * medians["before"]:
                print(
                    f"  MISSED: after/before {medians['after'] / medians['before']:.2f} > {limit}"
                )
                missed = True
        await store.close()
        return missed


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(_main()) else 0)
