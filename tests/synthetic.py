"""A large collected job written straight into a SQLite store with SQL (no runs): the
input of the export and report scale benchmarks and of the export tests.

Test and benchmark code, not friendscrape's: it lives beside the tests (the benchmarks
put this folder on their path), and mypy checks it strictly as it does the package."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from friendscrape.stores import lists_codec, sqlite_graph, sqlite_totals
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_keys import SaveMatcher

_POOL = 997
"""Distinct friend lists, reused round-robin: generating 550 names for each of a million
users would take longer than exporting them (a prime, so neighbours differ)."""


def user_id(index: int) -> str:
    """The numeric id of user ``index``."""
    return str(1_000_000_000 + index * 7)


def screen_name(index: int) -> str:
    """The name of user ``index``."""
    return f"user{index}x"


def _lists(users: int, friends: int) -> list[str]:
    """JSON friend lists, names only (the twitter-mobile shape: every target is resolved
    by name): half of them users of the job, some in another letter case, half outsiders."""
    lists = []
    for n in range(_POOL):
        names = []
        for i in range(friends):
            h = (n * 1_000_003 + i * 7919) % (2 * users)
            if h % 2:
                name = screen_name(h // 2)
                names.append(name.upper() if i % 5 == 0 else name)
            else:
                names.append(f"outsider{h}")
        lists.append(json.dumps(names))
    return lists


def _id_lists(users: int, friends: int) -> list[tuple[list[str], list[str]]]:
    """(names, ids) friend lists of the x-api shape: numeric upstream ids, half of them
    users of the job (their ids are the job's), half outsiders."""
    lists = []
    for n in range(_POOL):
        names, ids = [], []
        for i in range(friends):
            h = (n * 1_000_003 + i * 7919) % (2 * users)
            if h % 2:
                names.append(screen_name(h // 2))
                ids.append(user_id(h // 2))
            else:
                names.append(f"outsider{h}")
                ids.append(str(9_000_000_000_000 + h))
        lists.append((names, ids))
    return lists


def handle(index: int) -> str:
    """The Bluesky handle of user ``index`` (a job imported by handle keys it so)."""
    return f"user{index}x.bsky.social"


def _handle_lists(users: int, friends: int) -> list[tuple[list[str], list[str]]]:
    """(handles, DIDs) friend lists of a Bluesky job imported by handle: half of the
    friends users of the job (matched by handle: their DIDs are no key of the job), half
    outsiders; off the export's fast path."""
    lists = []
    for n in range(_POOL):
        names, ids = [], []
        for i in range(friends):
            h = (n * 1_000_003 + i * 7919) % (2 * users)
            if h % 2:
                names.append(handle(h // 2))
            else:
                names.append(f"outsider{h}.bsky.social")
            ids.append(f"did:plc:{h:024x}")
        lists.append((names, ids))
    return lists


def build(
    path: Path,
    *,
    users: int,
    friends: int = 550,
    batch: int = 10_000,
    resolved: bool = True,
    collected: int | None = None,
    source: str = "twitter-mobile",
) -> None:
    """A store at ``path`` with ``users`` users, the first ``collected`` of them (all by
    default) collected with ``friends`` friends; ``source`` "x-api": every user collected,
    lists with numeric upstream ids, stored as an x-api run saves them; "bluesky": every
    user collected, the job keyed by handle, lists of handles and DIDs."""
    if source in ("x-api", "bluesky"):
        _build_ids(
            path, users=users, friends=friends, batch=batch, source=source, resolved=resolved
        )
        return
    store = SqliteStore(path)
    asyncio.run(_create(store))
    _pause_totals(path)
    lists = _lists(users, friends)
    stamp = datetime(2024, 1, 1, tzinfo=UTC).isoformat(timespec="microseconds")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO users (user_id, screen_name, following_count, id_num, partition, seq)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (user_id(i), screen_name(i), friends, int(user_id(i)), 1 + i * 4 // users, i)
                for i in range(users)
            ),
        )
        # As the plan does: the lists are then resolved as a run saves them, each pool
        # list once here (``resolved=False``: left for the export to resolve).
        sqlite_graph.index_keys(conn)
        gen = sqlite_graph.generation(conn) if resolved else None
        keys = [
            sqlite_graph.stored_keys(conn, names) if gen is not None else None for names in lists
        ]
        column = (keys, -1 if gen is None else gen)
        # Stored as a run stores them now: compact (the JSON above is what SQL reads).
        stored = [lists_codec.encode(json.loads(names)) for names in lists]
        conn.execute("COMMIT")
        done = users if collected is None else collected
        for start in range(0, done, batch):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names,"
                " friend_ids, following_count, truncated, status, source, partition, attempts,"
                " start_at, end_at, friend_keys, keys_gen) VALUES (?, ?, ?, ?, '[]', ?, 0, 'ok',"
                " 'twitter-mobile', ?, 1, ?, ?, ?, ?)",
                _rows(
                    range(start, min(start + batch, done)),
                    users,
                    friends,
                    stored,
                    stamp,
                    column=column,
                ),
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    asyncio.run(_create(SqliteStore(path)))  # the running totals counted, as for an older store


def _build_ids(
    path: Path, *, users: int, friends: int, batch: int, source: str, resolved: bool
) -> None:
    """``build``'s x-api or Bluesky store: names and ids joined, not deflated; keys
    matched at save, each pool list once, as a run saves them (x-api's fast path: none)."""
    store = SqliteStore(path)
    asyncio.run(_create(store))
    _pause_totals(path)
    shaped = (_id_lists if source == "x-api" else _handle_lists)(users, friends)
    key = user_id if source == "x-api" else handle
    stored = [
        (lists_codec.encode(names, deflate=False), lists_codec.encode(ids, deflate=False))
        for names, ids in shaped
    ]
    stamp = datetime(2024, 1, 1, tzinfo=UTC).isoformat(timespec="microseconds")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO users (user_id, screen_name, following_count, id_num, partition, seq)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (key(i), _name(source, i), friends, int(user_id(i)), 1 + i * 4 // users, i)
                for i in range(users)
            ),
        )
        sqlite_graph.index_keys(conn)
        conn.execute("COMMIT")
        keys = _saved_keys(conn, shaped, source) if resolved else [(None, -1)] * len(shaped)
        for start in range(0, users, batch):
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO user_friends (user_id, screen_name, friend_count, friend_names,"
                " friend_ids, following_count, truncated, status, source, partition, attempts,"
                " start_at, end_at, friend_keys, keys_gen) VALUES (?, ?, ?, ?, ?, ?, 0, 'ok',"
                " ?, ?, 1, ?, ?, ?, ?)",
                (
                    (
                        key(i),
                        _name(source, i),
                        friends,
                        *stored[i % _POOL],
                        friends,
                        source,
                        1 + i * 4 // users,
                        stamp,
                        stamp,
                        *keys[i % _POOL],
                    )
                    for i in range(start, min(start + batch, users))
                ),
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    asyncio.run(_create(SqliteStore(path)))  # the running totals counted, as for an older store


def _saved_keys(
    conn: sqlite3.Connection, lists: list[tuple[list[str], list[str]]], source: str
) -> list[tuple[bytes | None, int]]:
    """The keys a run's save stores for each list (the save's own matcher)."""
    pairs = [(json.dumps(names), json.dumps(ids)) for names, ids in lists]
    matcher = SaveMatcher()
    matcher.prepare(conn, pairs)
    conn.execute("BEGIN")
    try:
        return matcher.resolved_keys(
            conn,
            pairs,
            [names for names, _ in lists],
            ids=[ids for _, ids in lists],
            sources=[source] * len(lists),
        )
    finally:
        conn.execute("COMMIT")


def _name(source: str, index: int) -> str:
    """User ``index``'s name: its handle in a Bluesky job."""
    return handle(index) if source == "bluesky" else screen_name(index)


def _rows(
    span: range,
    users: int,
    friends: int,
    lists: list[str | bytes],
    stamp: str,
    *,
    column: tuple[list[bytes | None], int],
) -> Iterator[tuple[object, ...]]:
    keys, gen = column
    for i in span:
        yield (
            user_id(i),
            screen_name(i),
            friends,
            lists[i % _POOL],
            friends,
            1 + i * 4 // users,
            stamp,
            stamp,
            keys[i % _POOL],
            gen,
        )


def _pause_totals(path: Path) -> None:
    """The store's running totals left to be counted once when it is next opened: a
    trigger on each of millions of one-row inserts costs some ten times the insert."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for name in sqlite_totals.TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    finally:
        conn.close()


async def _create(store: SqliteStore) -> None:
    await store.open()
    await store.close()
