"""What status counts on SQLite from wave 2 on (the current wave's results only) is read
from an index alone, never from the wide result rows; a store whose wave index is of an
older version gets the new one when opened to write, and counts the same."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from friendscrape.models import FriendList, Status, User
from friendscrape.stores.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)
IDS = [str(100 + i) for i in range(12)]


def _result(user: str, wave: int) -> FriendList:
    at = T0 + timedelta(days=wave, seconds=int(user))
    failed = int(user) % 5 == 0
    return FriendList(
        user_id=user,
        screen_name=f"n{user}",
        status=Status.FAILED if failed else Status.OK,
        source="twitter-mobile",
        partition=1 + int(user) % 3,
        start_at=at,
        end_at=at + timedelta(seconds=2),
        friend_names=() if failed else ("a", f"b{wave}"),
        error="timeout: gone" if failed else None,
    )


async def _in_wave_two(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(3)
    await store.save([_result(u, 1) for u in IDS])
    await store.open_wave(T0 + timedelta(days=2))
    await store.save([_result(u, 2) for u in IDS[:7]])
    return store


def _plans(store: SqliteStore, statements: list[str]) -> list[str]:
    conn = store._conn  # the statement's plan is what is tested
    assert conn is not None
    return [
        str(row[3])
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
        for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
    ]


async def test_summary_in_wave_two_reads_an_index_only(tmp_path: Path) -> None:
    store = await _in_wave_two(tmp_path / "s.db")
    try:
        conn = store._conn
        assert conn is not None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        summary = await store.partition_summary(since=T0)
        conn.set_trace_callback(None)
        steps = [p for p in _plans(store, statements) if " f " in f" {p} "]
        assert steps, statements
        assert all("COVERING INDEX" in p for p in steps), steps
        assert sum(s.users for s in summary) == 7  # the current wave's results only
    finally:
        await store.close()


async def test_a_store_with_the_older_wave_index_gets_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await _in_wave_two(path)
    expected = await store.partition_summary(since=T0)
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX user_friends_wave_totals")
    conn.execute("CREATE INDEX user_friends_wave ON user_friends (wave, length(user_id), user_id)")
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.partition_summary(since=T0) == expected
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "user_friends_wave_totals" in names
    assert "user_friends_wave" not in names


async def test_wave_totals_read_an_index_only(tmp_path: Path) -> None:
    store = await _in_wave_two(tmp_path / "s.db")
    try:
        conn = store._conn
        assert conn is not None
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        summaries = await store.wave_summaries()
        conn.set_trace_callback(None)
        steps = [p for p in _plans(store, statements) if "SCAN user_friends" in p]
        assert steps, statements
        assert all("COVERING INDEX" in p for p in steps), steps
        assert [(s.wave, s.done) for s in summaries] == [(1, 12), (2, 7)]
    finally:
        await store.close()
