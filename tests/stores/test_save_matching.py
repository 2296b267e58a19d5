"""The SQLite store's save-time matching with its filter of the job's keys stores exactly
what SQLite matching every name stores, never uses a filter of users that changed, and
is built apart for a large job (saves go ahead meanwhile, and closing the store stops it)
and by the first save for a small one."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from pathlib import Path

import msgspec
import pytest

from friendscrape.models import FriendList, User
from friendscrape.stores import lists_codec, sqlite_graph, sqlite_keys
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_keys import SaveMatcher
from storefixtures import ok_result

# Ids and names SQLite and JSON treat specially: letter case (NOCASE folds ASCII only),
# quotes, backslashes and control characters (escaped in JSON), non-ASCII letters, an
# empty name (matches nobody), an id that is another user's name, digits as a name.
USERS = [
    User("10", "Ada", None),
    User("200", "bob", None),
    User("ab", "10", None),
    User("AB", "Zed", None),
    User('q"1', "Quote\\d", None),
    User("t\tab\n\x01", "ctl", None),
    User("\x7f\u00e9\u2028", "\u00c9mile", None),
    User("3000", "", None),
    User("x\x00y", "nul\x00one", None),
]
NAMES = [
    "ADA",
    "ada",
    "Bob",
    "10",
    "ab",
    "Ab",
    "aB",
    "zed",
    "QUOTE\\D",
    'q"1',
    'Q"1',
    "T\tAB\n\x01",
    "CTL",
    "\u00e9mile",
    "\u00c9MILE",
    "\x7f\u00c9\u2028",
    "\x7f\u00e9\u2028",
    "",
    "3000",
    "nobody",
    "x\x00y",
    "x\x00z",
    "nul\x00two",
]


async def _planned(path: Path, users: list[User]) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.import_users(users)
    await store.plan_partitions(1)
    await store.close()


def _lists(names: list[tuple[str, ...]]) -> list[tuple[str, str]]:
    return [(msgspec.json.encode(n).decode(), "[]") for n in names]


def test_filtered_matching_is_byte_identical_to_sqlite_alone(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    rnd = random.Random(3)
    # Many outsiders too, so that some lists take each of the matcher's ways.
    others = [User(str(5000 + i), f"user{i}", None) for i in range(300)]
    asyncio.run(_planned(path, USERS + others))
    pool = NAMES + [u.screen_name.upper() for u in others[:50]] + [f"out{i}" for i in range(400)]
    lists: list[tuple[str, ...]] = [()]
    for size in (1, 3, 20, 40, 200, 600):
        for share in (0.0, 0.05, 0.3, 1.0):
            lists.append(
                tuple(
                    rnd.choice(pool[:73]) if rnd.random() < share else f"out{rnd.randrange(9999)}"
                    for _ in range(size)
                )
            )
    lists.append(tuple(NAMES))
    conn = sqlite3.connect(path, isolation_level=None)
    matcher = SaveMatcher()
    encoded = _lists(lists)
    matcher.prepare(conn, encoded)
    conn.execute("BEGIN IMMEDIATE")
    expected = sqlite_graph.resolved_keys(conn, encoded)
    got = matcher.resolved_keys(conn, encoded, lists)
    # In batches of a few lists too, as the writer saves them.
    batched = []
    for start in range(0, len(lists), 7):
        batched += matcher.resolved_keys(conn, encoded[start : start + 7], lists[start : start + 7])
    conn.execute("ROLLBACK")
    conn.close()
    assert got == expected
    assert batched == expected
    gen = expected[0][1]
    assert gen > 0
    assert all(g == gen for _, g in expected)
    whole = dict(
        zip(NAMES, lists_codec.decode_keys(expected[-1][0] or b"", len(NAMES)), strict=True)
    )
    assert whole["aB"] == "AB"  # the smallest id (BINARY) of those equal ignoring case
    assert whole["10"] == "10"
    assert whole['Q"1'] == 'q"1'
    assert whole["\x7f\u00c9\u2028"] is None  # NOCASE leaves non-ASCII letters alone
    assert whole[""] is None
    assert whole["ADA"] == "10"


def _result(user_id: str, names: tuple[str, ...]) -> FriendList:
    return ok_result(user_id, names, following_count=len(names))


def _keys(path: Path, user_id: str) -> list[str | None]:
    """A saved list's keys, one per friend (None: no user of the job)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT friend_keys, friend_count FROM user_friends WHERE user_id = ?", (user_id,)
        ).fetchone()
        return lists_codec.decode_keys(row[0], row[1])
    finally:
        conn.close()


async def test_users_imported_by_another_process_between_saves_are_matched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "friendscrape.db"
    await _planned(path, USERS)
    store = SqliteStore(path)
    await store.open()
    try:
        names = ("Ada", "newcomer", "someone")
        await store.save([_result("10", names)])  # no filter yet: SQLite alone
        await store.save([_result("200", names)])  # the filter, built before this save
        assert _keys(path, "200") == ["10", None, None]
        # Another process (another store on the file) imports a user the filter lacks.
        other = SqliteStore(path)
        await other.open()
        await other.import_users([User("777", "NewComer", None)])
        await other.close()
        await store.save([_result("200", names)])
        assert _keys(path, "200") == ["10", "777", None]
        await store.save([_result("10", names)])  # the filter rebuilt at the new generation
        assert _keys(path, "10") == ["10", "777", None]
    finally:
        await store.close()


async def test_saves_go_ahead_while_the_filter_is_built_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 3.6M users the filter takes seconds to build: saves must not wait for it.
    monkeypatch.setattr(sqlite_keys, "_BUILD_HERE", 0)  # a job as large as that
    path = tmp_path / "friendscrape.db"
    await _planned(path, USERS)
    started, release = threading.Event(), threading.Event()
    real = sqlite_keys._build

    def held(conn: sqlite3.Connection, stop: threading.Event | None = None) -> object:
        started.set()
        assert release.wait(60)
        return real(conn, stop)

    monkeypatch.setattr(sqlite_keys, "_build", held)
    store = SqliteStore(path)
    await store.open()
    try:
        names = ("ADA", "newcomer", "zed")
        await store.save([_result("10", names)])  # starts the filter's thread
        assert await asyncio.to_thread(started.wait, 60)
        await store.save([_result("200", names)])  # the filter still being built
        assert _keys(path, "10") == _keys(path, "200") == ["10", None, "AB"]
        assert store._matcher._filter is None
        release.set()
        thread = store._matcher._thread
        assert thread is not None
        await asyncio.to_thread(thread.join, 60)
        await store.save([_result("3000", names)])  # takes the finished filter
        assert store._matcher._filter is not None
        assert _keys(path, "3000") == ["10", None, "AB"]
    finally:
        release.set()
        await store.close()


async def test_closing_the_store_stops_a_filter_being_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_keys, "_BUILD_HERE", 0)  # a job built apart
    path = tmp_path / "friendscrape.db"
    await _planned(path, USERS)
    stops: list[threading.Event] = []
    real = sqlite_keys._build

    def until_stopped(conn: sqlite3.Connection, stop: threading.Event | None = None) -> object:
        assert stop is not None
        stops.append(stop)
        assert stop.wait(60)  # set by close, which waits for this thread
        return real(conn, stop)

    monkeypatch.setattr(sqlite_keys, "_build", until_stopped)
    store = SqliteStore(path)
    await store.open()
    await store.save([_result("10", ("Ada",))])
    thread = store._matcher._thread
    assert thread is not None
    await store.close()
    assert not thread.is_alive()
    assert len(stops) == 1
    assert stops[0].is_set()
    assert _keys(path, "10") == ["10"]


async def test_a_small_jobs_first_save_builds_the_filter_on_its_own_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No thread and no second connection for a job of a few users: the first save is
    # already matched with the filter.
    path = tmp_path / "friendscrape.db"
    await _planned(path, USERS)
    monkeypatch.setattr(sqlite_keys, "_BUILD_HERE", len(USERS))
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save([_result("10", ("ADA", "newcomer", "zed"))])
        assert store._matcher._thread is None
        assert store._matcher._filter is not None
        assert _keys(path, "10") == ["10", None, "AB"]
    finally:
        await store.close()


async def test_a_job_one_user_larger_builds_its_filter_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "friendscrape.db"
    await _planned(path, USERS)
    monkeypatch.setattr(sqlite_keys, "_BUILD_HERE", len(USERS) - 1)
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save([_result("10", ("ADA", "newcomer", "zed"))])
        assert store._matcher._thread is not None
    finally:
        await store.close()
    assert _keys(path, "10") == ["10", None, "AB"]


def test_the_filter_holds_every_user_read_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Users are read a chunk to a row (one row read lets go of the interpreter's lock):
    # chunks of 4 here, ids and names with quotes, control characters and NUL among them.
    path = tmp_path / "friendscrape.db"
    others = [User(str(5000 + i), f"user{i}", None) for i in range(30)]
    asyncio.run(_planned(path, USERS + others))
    monkeypatch.setattr(sqlite_keys, "_CHECK_STOP", 4)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        keys = sqlite_keys._build(conn)
    finally:
        conn.close()
    assert keys is not None
    assert not keys.passes_all
    every = [u.user_id for u in USERS + others] + [u.screen_name for u in USERS + others]
    wanted = [k for k in every if k]
    assert keys.candidates(wanted) == wanted
