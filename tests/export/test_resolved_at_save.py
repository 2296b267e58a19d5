"""Friend lists are resolved to the job's ids once, as they are saved; an export reads
those ids as they are while they are current, and resolves itself the lists saved before
the job's users last changed (an import after a run), or saved by an older version."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from friendscrape.models import FriendList, User
from friendscrape.stores import sqlite_graph
from friendscrape.stores.base import EdgeList, Store
from friendscrape.stores.sqlite import SqliteStore
from storefixtures import ok_result
from synthetic import build

ADA = User("10", "Ada", 3)
BOB = User("200", "bob", 2)
CAROL = User("3000", "carol", 2)


def _result(user: User, names: tuple[str, ...]) -> FriendList:
    return ok_result(
        user.user_id, names, screen_name=user.screen_name, following_count=user.following_count
    )


async def _edges(store: Store) -> dict[str, EdgeList]:
    return {e.source_id: e async for e in store.edge_lists()}


async def test_users_imported_after_a_save_are_resolved(store: Store) -> None:
    await store.import_users([ADA, BOB])
    await store.plan_partitions(1)
    await store.save([_result(ADA, ("BOB", "carol", "Robert"))])
    before = await _edges(store)
    assert before["10"].targets == ["200", "", ""]
    # After the save: CAROL joins the job and BOB is renamed Robert.
    await store.import_users([CAROL, User("200", "robert", 2)])
    await store.save([_result(CAROL, ("ada", "ROBERT", "bob"))])
    edges = await _edges(store)
    assert edges["10"].targets == ["", "3000", "200"]
    assert edges["10"].known == [False, True, True]
    assert edges["3000"].targets == ["10", "200", ""]


async def _sqlite_edges(path: Path) -> list[EdgeList]:
    store = SqliteStore(path, read_only=True)
    await store.open()
    try:
        return [e async for e in store.edge_lists()]
    finally:
        await store.close()


def _current(path: Path) -> tuple[int, int]:
    """Lists resolved at the store's current generation, and all lists."""
    conn = sqlite3.connect(path)
    try:
        gen = sqlite_graph.generation(conn)
        current = conn.execute(
            "SELECT count(*) FROM user_friends WHERE keys_gen = ?", (gen,)
        ).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM user_friends").fetchone()[0]
        return int(current), int(total)
    finally:
        conn.close()


@pytest.mark.parametrize("source", ["twitter-mobile", "bluesky"])
def test_lists_resolved_at_save_equal_the_exports_own_resolution(
    tmp_path: Path, source: str
) -> None:
    # Bluesky imported by handle: lists with upstream ids off the fast path, matched at
    # save too.
    saved, unresolved = tmp_path / "saved.db", tmp_path / "unresolved.db"
    build(saved, users=400, friends=60, source=source)
    build(unresolved, users=400, friends=60, resolved=False, source=source)
    assert _current(saved) == (400, 400)
    assert _current(unresolved) == (0, 400)
    edges = asyncio.run(_sqlite_edges(saved))
    assert edges == asyncio.run(_sqlite_edges(unresolved))
    # Half the synthetic friends are users of the job (some named in capitals).
    known = sum(sum(e.known) for e in edges)
    assert 0.3 * 400 * 60 < known < 0.7 * 400 * 60
    assert all(t for e in edges for t, k in zip(e.targets, e.known, strict=True) if k)


def test_a_store_of_an_older_version_exports_the_same_edges(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    build(path, users=300, friends=40)
    expected = asyncio.run(_sqlite_edges(path))
    conn = sqlite3.connect(path)
    conn.executescript(
        """DROP INDEX user_friends_keys_gen; DROP INDEX users_id_nocase;
           DROP INDEX users_name_nocase; DROP TABLE key_generation;
           ALTER TABLE user_friends DROP COLUMN friend_keys;
           ALTER TABLE user_friends DROP COLUMN keys_gen;"""
    )
    conn.close()
    path.chmod(0o444)  # opened read-only, as export opens it
    assert asyncio.run(_sqlite_edges(path)) == expected


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
async def test_a_run_resolves_once_the_plan_made_the_indexes(store: Store) -> None:
    assert isinstance(store, SqliteStore)
    await store.import_users([ADA, BOB, CAROL])
    await store.save([_result(BOB, ("ada",))])  # before the plan: left to the export
    await store.plan_partitions(1)
    await store.save([_result(ADA, ("BOB", "carol", "nobody"))])
    assert _current(store.path) == (1, 2)
    edges = await _edges(store)
    assert edges["10"].targets == ["200", "3000", ""]
    assert edges["200"].targets == ["10"]
