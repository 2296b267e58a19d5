"""The SQLite store runs every statement on one thread of its own, which ends when the
store closes; a save keeps its statement journals in memory and leaves the connection's
temporary storage as it found it, failed or not."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from friendscrape.errors import StoreTransientError
from friendscrape.models import FriendList
from friendscrape.stores.sqlite import SqliteStore
from storefixtures import ok_result


def _result(user_id: str) -> FriendList:
    return ok_result(user_id, ("a", "b"), ids=("1", "2"), source="x-api")


async def test_every_statement_runs_on_the_stores_one_thread_which_ends_at_close(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    ran_on: set[str] = set()
    assert store._conn is not None
    store._conn.set_trace_callback(lambda _sql: ran_on.add(threading.current_thread().name))
    try:
        for n in range(3):
            await store.save([_result(str(n))])
        # Calls from several tasks at once, reads among them.
        await asyncio.gather(*(store.save([_result(str(n))]) for n in range(3, 9)))
        read = [r.user_id async for r in store.results()]
    finally:
        await store.close()
    assert sorted(read, key=int) == [str(n) for n in range(9)]
    assert len(ran_on) == 1
    (name,) = ran_on
    assert name.startswith("friendscrape-sqlite")
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(timeout=10)
            assert not thread.is_alive()


async def test_a_save_keeps_its_journals_in_memory_and_restores_temp_store(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    seen: list[int] = []

    def failing(conn: sqlite3.Connection) -> None:
        seen.append(int(conn.execute("PRAGMA temp_store").fetchone()[0]))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM user_friends")
        raise sqlite3.OperationalError("disk I/O error")

    try:
        await store.save([_result("1")])
        with pytest.raises(StoreTransientError, match="disk I/O error"):
            await store._call("write", failing, journals_in_memory=True)
        after = await store._call(
            "read", lambda c: (int(c.execute("PRAGMA temp_store").fetchone()[0]), c.in_transaction)
        )
        await store.save([_result("2")])
        read = sorted([r.user_id async for r in store.results()])
    finally:
        await store.close()
    assert seen == [2]  # MEMORY while the write ran
    assert after == (0, False)  # the default again, the failed write rolled back
    assert read == ["1", "2"]  # nothing saved was lost
