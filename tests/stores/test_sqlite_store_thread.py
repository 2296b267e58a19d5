"""The SQLite store runs every statement on one thread of its own, which ends when the
store closes; a save keeps its statement journals in memory and leaves the connection's
temporary storage as it found it, failed or not, hashes its lists and joins those with
upstream ids in the caller's thread, and its page cache stays at the size it is set to."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from friendscrape.errors import StoreTransientError
from friendscrape.models import FriendList, User
from friendscrape.stores import lists_codec, sqlite_runs, sqlite_waves, thread_heap
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


async def test_a_save_hashes_its_lists_in_the_callers_thread_not_the_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing a list over 2 KB lets go of the interpreter's lock; in the store's thread
    each such release let the busy event loop take the lock, and the store's thread then
    waited to get it back, twice a list."""
    hashed_on: list[str] = []
    hashes_of = sqlite_waves.hashes_of

    def recording(results: Sequence[FriendList], joined: Any = None) -> list[int]:
        hashed_on.append(threading.current_thread().name)
        return hashes_of(results, joined)

    monkeypatch.setattr(sqlite_waves, "hashes_of", recording)
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.save([_result("1"), _result("2")])
        read = {r.user_id: r.friend_ids async for r in store.results()}
    finally:
        await store.close()
    assert hashed_on == [threading.current_thread().name]
    assert read == {"1": ("1", "2"), "2": ("1", "2")}


def test_a_saves_hashes_from_the_joined_lists_equal_the_lists_own() -> None:
    """The save hashes lists from their stored, joined form (not joined again); every
    hash equals ``list_hash``'s, or the next wave would take unchanged lists as changed."""
    lists = [
        (("a",), ("1",)),
        (("Ada", "\u00e9mile", "\u2028x", "unit\x1fsep", ""), ("1", "2", "3", "4", "5")),
        (("a", "b"), ("1",)),
        (("line\nfeed", "b"), ("1", "2")),
        (tuple(f"name{i}" for i in range(1000)), tuple(str(i) for i in range(1000))),
        ((), ("1",)),
    ]
    results = [ok_result(str(k), names, ids=ids) for k, (names, ids) in enumerate(lists)]
    joined = [
        (
            lists_codec.encode(r.friend_names, deflate=False),
            lists_codec.encode(r.friend_ids, deflate=False),
        )
        for r in results
    ]
    assert sqlite_waves.hashes_of(results, joined) == sqlite_waves.hashes_of(results)
    assert len(set(sqlite_waves.hashes_of(results))) == len(lists)


def _sqlite_memory_used() -> Callable[[], int] | None:
    """SQLite's own count of the memory it holds, when the library Python's sqlite3
    uses can be loaded here (a Python built with SQLite inside has no such count)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    used = ctypes.CDLL(name).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return cast("Callable[[], int]", used)


async def test_the_page_cache_stays_at_its_set_size_with_64_kib_pages(
    tmp_path: Path,
) -> None:
    """SQLite counts its default cache (2,000 KiB) in pages of the size a connection
    opens with (4 KiB), and once kept that count of the store's 64 KiB pages: some
    31 MB, filled page by page as a run saved; the store sets 8 MB."""
    used = _sqlite_memory_used()
    if used is None:
        pytest.skip("SQLite's memory count cannot be read in this Python")
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    before = used()
    ids = tuple(str(10**17 + n) for n in range(1000))
    names = tuple(f"name_{n:06d}" for n in range(1000))
    try:
        for batch in range(12):  # some 40 MB of lists
            await store.save(
                [
                    ok_result(str(batch * 100 + n), names, ids=ids, source="x-api")
                    for n in range(100)
                ]
            )
        grown = used() - before
    finally:
        await store.close()
    if grown <= 0:
        pytest.skip("the SQLite library loaded here is not the one Python's sqlite3 uses")
    assert grown < 14_000_000, grown  # the 8 MB cache and what one save holds, not 31 MB


async def test_batches_of_many_sizes_leave_little_of_their_lists_bound(tmp_path: Path) -> None:
    """Each statement the connection keeps holds the lists last bound to it: batches of
    sizes 1-49 (a run whose batches the flush interval cuts short) once left 49
    statements holding some 30 MB of lists between them."""
    used = _sqlite_memory_used()
    if used is None:
        pytest.skip("SQLite's memory count cannot be read in this Python")
    ids = tuple(str(10**17 + n) for n in range(1000))
    names = tuple(f"name_{n:06d}" for n in range(1000))
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    before = used()
    try:
        for size in range(1, 50):
            await store.save(
                [ok_result(f"{size}-{n}", names, ids=ids, source="x-api") for n in range(size)]
            )
        grown = used() - before
    finally:
        await store.close()
    if grown <= 0:
        pytest.skip("the SQLite library loaded here is not the one Python's sqlite3 uses")
    assert grown < 10_000_000, grown


async def test_lists_with_ids_are_joined_in_the_callers_thread_names_deflated_in_the_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Joining holds the interpreter's lock throughout: in the store's thread the busy
    event loop waited for it and took the lock back and forth with it. Deflating lets
    go of the lock, so names-only lists are deflated in the store's thread."""
    encoded_on: list[tuple[str, bool]] = []
    encode = lists_codec.encode

    def recording(values: Sequence[str], *, deflate: bool = True) -> str | bytes:
        encoded_on.append((threading.current_thread().name, deflate))
        return encode(values, deflate=deflate)

    monkeypatch.setattr(lists_codec, "encode", recording)
    names_only = ok_result("2", tuple(f"name_{n}" for n in range(40)))
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.save([_result("1"), names_only])
        read = {r.user_id: (r.friend_names, r.friend_ids) async for r in store.results()}
    finally:
        await store.close()
    here = threading.current_thread().name
    assert encoded_on[:2] == [(here, False), (here, False)]  # x-api's names and ids
    (thread, deflate), *_ = encoded_on[2:]
    assert thread.startswith("friendscrape-sqlite")
    assert deflate
    assert read == {"1": (("a", "b"), ("1", "2")), "2": (names_only.friend_names, ())}


async def test_saves_in_a_row_set_memory_journals_once_and_any_other_call_resets_them(
    tmp_path: Path,
) -> None:
    """Set and reset around each save, the setting was two statements of some eight a
    save, each letting go of the interpreter's lock and taking it back."""
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    pragmas: list[str] = []
    assert store._conn is not None
    store._conn.set_trace_callback(
        lambda sql: pragmas.append(sql) if "temp_store" in sql.lower() else None
    )
    try:
        for n in range(3):
            await store.save([_result(str(n))])
        during = list(pragmas)
        after = await store._call(
            "read", lambda c: int(c.execute("PRAGMA temp_store").fetchone()[0])
        )
        await store.save([_result("3")])
        read = sorted([r.user_id async for r in store.results()])
    finally:
        await store.close()
    assert during == ["PRAGMA temp_store = MEMORY"]
    assert after == 0  # a call that is not a save: the default again
    assert read == ["0", "1", "2", "3"]


async def test_the_stores_thread_reserves_its_heap_once_by_its_first_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reserved_on: list[str] = []
    monkeypatch.setattr(
        thread_heap, "reserve", lambda: reserved_on.append(threading.current_thread().name)
    )
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        assert reserved_on == []  # opening (or reading) the store reserves nothing
        for n in range(3):
            await store.save([_result(str(n))])
    finally:
        await store.close()
    assert len(reserved_on) == 1
    assert reserved_on[0].startswith("friendscrape-sqlite")


async def test_a_saves_rows_are_built_in_the_callers_thread_the_transaction_fills_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the rows' values held the interpreter's lock in the store's thread while
    the busy event loop waited for it: they are built in the caller's thread, and the
    store's thread fills in what its transaction read (keys, wave, changed)."""
    built_on: list[str] = []
    for name in ("_upsert_values", "_saved"):
        original = getattr(sqlite_runs, name)

        def recording(*args: Any, _original: Callable[..., Any] = original) -> Any:
            built_on.append(threading.current_thread().name)
            return _original(*args)

        monkeypatch.setattr(sqlite_runs, name, recording)
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.save([_result("1"), _result("2"), _result("1")])
        await store.open_wave(datetime.now(UTC))
        changed = ok_result("2", ("a", "c"), ids=("1", "3"), source="x-api")
        await store.save([_result("1"), changed])
        read = {r.user_id: r.friend_ids async for r in store.results()}
    finally:
        await store.close()
    assert built_on == [threading.current_thread().name] * 4
    assert read == {"1": ("1", "2"), "2": ("1", "3")}
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        rows = conn.execute("SELECT user_id, wave, changed FROM user_friends").fetchall()
        totals = conn.execute("SELECT wave, users, changed FROM result_totals").fetchall()
    finally:
        conn.close()
    assert sorted(rows) == [("1", 2, 0), ("2", 2, 1)]
    assert totals == [(2, 2, 1)]


async def test_a_page_of_pending_users_is_read_as_one_row(tmp_path: Path) -> None:
    """Each row read lets go of the interpreter's lock once a column and once more (a
    hand-over with the busy loop each): a page of users is one row, not one a user."""
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.import_users([User(user_id=str(n), screen_name=f"u{n}") for n in range(50)])
        await store.plan_partitions(1)
        assert store._conn is not None
        rows_read = [0]

        def counted(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> sqlite3.Row:
            rows_read[0] += 1
            return sqlite3.Row(cursor, row)

        store._conn.row_factory = counted
        page = await store.pending_users(1, retry_failed=False, cursor=None, limit=40)
    finally:
        await store.close()
    assert len(page.users) == 40
    assert rows_read[0] == 1
