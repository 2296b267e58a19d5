"""The SQLite store's running totals (what status reads instead of every result) stay
equal to a count of the results after every kind of write: saves, a retried or replaced
result, plans and replans, users imported and placed later, waves, rows written by other
programs' SQL, and a store of an older version opened. Status's output is the same, byte
for byte, as when it counts every row. On both stores, status's figures are those of the
results saved."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from friendscrape.models import FriendList, Partition, Status, User
from friendscrape.stores import sqlite_totals as totals
from friendscrape.stores.base import Store
from friendscrape.stores.sqlite import SqliteStore
from totalscheck import assert_status_as_counted, assert_totals_exact, without_totals

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
IDS = [str(100 + i) for i in range(40)]


def _result(user: str, *, minute: int, failed: bool = False, micros: int = 0) -> FriendList:
    start = T0 + timedelta(minutes=minute, seconds=int(user) % 7, microseconds=micros)
    return FriendList(
        user_id=user,
        screen_name=f"n{user}",
        status=Status.FAILED if failed else Status.OK,
        source="twitter-mobile",
        partition=1 + int(user) % 3,
        start_at=start,
        end_at=start + timedelta(seconds=1 + int(user) % 4, microseconds=int(user)),
        friend_names=() if failed else tuple(f"f{i}" for i in range(int(user) % 9)),
        error="timeout after retries: gone" if failed else None,
    )


async def _check(store: SqliteStore) -> None:
    assert_totals_exact(store.path)
    await assert_status_as_counted(store.path, NOW)


async def test_every_kind_of_write_keeps_the_totals_exact(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.import_users([User(i, f"n{i}") for i in IDS[:30]])
        await store.plan_partitions(3)
        await _check(store)
        # saves, some failed; the first saved users are the partitions' first starts
        await store.save([_result(u, minute=n, failed=n % 4 == 0) for n, u in enumerate(IDS[:24])])
        await _check(store)
        # a retry replaces failed results (their group's first start goes: stale)
        await store.save([_result(u, minute=60 + n) for n, u in enumerate(IDS[:24:4])])
        await _check(store)
        # a result replaced by one that started earlier, and one failing again
        await store.save([_result(IDS[5], minute=-30), _result(IDS[9], minute=70, failed=True)])
        await _check(store)
        # replans: by users, then by pages, moving users and their results
        await store.plan_partitions(5)
        await _check(store)
        await store.plan_partitions(2, page_size=100)
        await _check(store)
        # users imported after the plan: saved before being placed, then placed
        await store.import_users([User(i, f"n{i}") for i in IDS[30:]])
        await store.save([_result(u, minute=80, micros=7) for u in IDS[30:34]])
        await _check(store)
        assert await store.place_unplaced()
        await _check(store)
        await store.save([_result(u, minute=81) for u in IDS[34:]])
        await _check(store)
        # a second wave: some users collected again, one failed then retried
        await store.open_wave(T0 + timedelta(minutes=90))
        await store.save([_result(u, minute=95 + n % 3) for n, u in enumerate(IDS[::2])])
        await store.save([_result(IDS[1], minute=96, failed=True)])
        await _check(store)
        await store.save([_result(IDS[1], minute=97)])
        await _check(store)
    finally:
        await store.close()


async def test_rows_written_by_other_programs_sql_are_counted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(4)
    await store.save([_result(u, minute=n, failed=n % 5 == 0) for n, u in enumerate(IDS)])
    await store.close()
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("PRAGMA recursive_triggers = ON")  # as the store's own connection does
    writes = [
        (
            "UPDATE user_friends SET status = 'failed',"
            " start_at = '2024-04-01T00:00:00.5+00:00' WHERE rowid % 7 = 0"
        ),
        "UPDATE user_friends SET end_at = '2024-05-01T11:00:00+00:00' WHERE rowid % 6 = 0",
        "DELETE FROM user_friends WHERE rowid % 9 = 0",
        "DELETE FROM users WHERE rowid % 11 = 0",
        "UPDATE users SET partition = NULL WHERE rowid % 13 = 0",
        "UPDATE users SET partition = 9 WHERE rowid % 10 = 0",
        "INSERT INTO users (user_id, screen_name, partition) VALUES ('999', 'x', 2)",
        "UPDATE user_friends SET wave = 2 WHERE rowid % 4 = 0",
    ]
    try:
        for sql in writes:
            conn.execute(sql)
            assert_totals_exact(tmp_path / "s.db")
    finally:
        conn.close()
    await assert_status_as_counted(tmp_path / "s.db", NOW)


_FOREIGN_INSERTS = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA recursive_triggers = ON")
conn.execute("INSERT OR REPLACE INTO user_friends SELECT * FROM user_friends WHERE rowid % 3 = 0")
conn.execute(
    "INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names, friend_ids,"
    " truncated, status, source, partition, attempts, start_at, end_at, wave)"
    " SELECT 'x' || user_id, screen_name, friend_count, friend_names, friend_ids, truncated,"
    " status, source, partition, attempts, start_at, end_at, wave FROM user_friends"
    " WHERE rowid % 5 = 0"
)
conn.close()
"""


async def test_results_another_program_inserts_are_counted_again(tmp_path: Path) -> None:
    # The results' INSERT has no trigger (a save counts its own rows): rows another
    # program inserts leave the totals short of the table, so status counts the rows
    # until the store is next opened to write, which counts the totals again.
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(4)
    await store.save([_result(u, minute=n, failed=n % 5 == 0) for n, u in enumerate(IDS)])
    await store.close()
    subprocess.run([sys.executable, "-c", _FOREIGN_INSERTS, str(path)], check=True)
    conn = sqlite3.connect(path)
    assert not totals.counted(conn)
    assert not totals.kept(conn)
    conn.close()
    await assert_status_as_counted(path, NOW)
    writer = SqliteStore(path)
    await writer.open()
    await writer.close()
    assert_totals_exact(path)
    await assert_status_as_counted(path, NOW)


async def test_a_save_counts_a_user_saved_twice_in_it_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.import_users([User(i, f"n{i}") for i in IDS[:10]])
        await store.plan_partitions(2)
        await store.save([_result(u, minute=1) for u in IDS[:4]])
        # a new user twice (failed, then ok), a saved one twice, and new ones
        twice = [
            _result(IDS[6], minute=5, failed=True),
            _result(IDS[1], minute=6, failed=True),
            _result(IDS[7], minute=2),
            _result(IDS[6], minute=9),
            _result(IDS[1], minute=-3),
        ]
        await store.save(twice)
        await _check(store)
        summary = await store.partition_summary(since=T0)
        assert sum(s.users for s in summary) == 6
    finally:
        await store.close()


async def test_an_older_stores_insert_trigger_is_dropped_when_opened_to_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS[:6]])
    await store.plan_partitions(2)
    await store.save([_result(u, minute=1) for u in IDS[:3]])
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # the trigger of the version before, whose rows saves now count themselves
    conn.execute(
        """CREATE TRIGGER result_totals_insert AFTER INSERT ON user_friends BEGIN
           UPDATE result_totals SET users = users + 1 WHERE wave = NEW.wave
               AND partition = NEW.partition AND status = NEW.status; END"""
    )
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save([_result(u, minute=2) for u in IDS[3:]])
        await _check(store)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    on_insert = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'user_friends'"
        " AND sql LIKE '%AFTER INSERT%'"
    ).fetchall()
    conn.close()
    assert on_insert == []


async def test_a_store_of_an_older_version_gains_its_totals_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(3)
    await store.save([_result(u, minute=n, failed=n % 3 == 0) for n, u in enumerate(IDS)])
    await store.open_wave(T0 + timedelta(minutes=90))
    await store.save([_result(u, minute=100) for u in IDS[:10]])
    await store.close()
    older = without_totals(path, tmp_path / "older.db")
    # read-only (status of an older store): counted from its rows, no table added
    reader = SqliteStore(older, read_only=True)
    await reader.open()
    summary = await reader.partition_summary(since=T0)
    await reader.close()
    assert sum(s.users for s in summary) == 10
    conn = sqlite3.connect(older)
    assert "result_totals" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    writer = SqliteStore(older)
    await writer.open()  # opened to write: the totals counted once
    await writer.close()
    assert_totals_exact(older)
    await assert_status_as_counted(older, NOW)


async def test_stale_times_are_counted_again_when_the_store_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(2)
    await store.save([_result(u, minute=n, failed=True) for n, u in enumerate(IDS)])
    await store.save([_result(u, minute=50) for u in IDS[:3]])  # the first failed, retried
    await store.close()
    conn = sqlite3.connect(path)
    stale = conn.execute("SELECT COUNT(*) FROM result_totals WHERE stale_start").fetchone()[0]
    conn.close()
    assert stale
    await assert_status_as_counted(path, NOW)  # read with stale groups: counted again
    reopened = SqliteStore(path)
    await reopened.open()
    await reopened.close()
    conn = sqlite3.connect(path)
    left = conn.execute("SELECT COUNT(*) FROM result_totals WHERE stale_start OR stale_end")
    assert left.fetchone()[0] == 0
    conn.close()
    assert_totals_exact(path)


async def test_durations_are_summed_to_the_microsecond(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.import_users([User(i, f"n{i}") for i in IDS[:3]])
        await store.plan_partitions(1)
        at = T0 + timedelta(microseconds=999_999)
        results = [
            FriendList(
                user_id=u,
                screen_name="n",
                status=Status.OK,
                source="twitter-mobile",
                partition=1,
                start_at=at,
                end_at=at + timedelta(microseconds=1 + n),
                friend_names=("a",),
            )
            for n, u in enumerate(IDS[:3])
        ]
        await store.save(results)
        (row,) = await store.partition_summary(since=T0)
        assert row.seconds == 6e-6  # 1 + 2 + 3 microseconds
        assert row.first_start == at
        await _check(store)
    finally:
        await store.close()


async def test_status_figures_are_the_saved_results_on_both_stores(store: Store) -> None:
    await store.import_users([User(i, f"n{i}") for i in IDS[:12]])
    await store.plan_partitions(3)
    await store.save([_result(u, minute=n, failed=n % 3 == 0) for n, u in enumerate(IDS[:12])])
    retried = [_result(u, minute=40 + n) for n, u in enumerate(IDS[:12:3])]
    await store.save(retried)
    latest = {
        r.user_id: r
        for r in [_result(u, minute=n, failed=n % 3 == 0) for n, u in enumerate(IDS[:12])] + retried
    }
    plan = {u: p.number for p in await store.partitions() for u in IDS[:12] if _in(p, u)}
    summary = await store.partition_summary(since=T0 + timedelta(minutes=30))
    users: Counter[tuple[int, str]] = Counter()
    for r in latest.values():
        users[plan[r.user_id], r.status.value] += 1
    assert {(s.partition, s.status): s.users for s in summary} == dict(users)
    assert sum(s.friends for s in summary) == sum(r.friend_count for r in latest.values())
    seconds = sum((r.end_at - r.start_at).total_seconds() for r in latest.values())
    assert abs(sum(s.seconds for s in summary) - seconds) < 1e-6
    assert sum(s.recent for s in summary) == len(retried)
    assert min(s.first_start for s in summary if s.first_start) == min(
        r.start_at for r in latest.values()
    )


def _in(partition: Partition, user: str) -> bool:
    low, high = partition.min_user_id, partition.max_user_id
    return (len(low), low) <= (len(user), user) <= (len(high), high)
