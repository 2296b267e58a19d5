"""Edges of jobs whose user ids are the platform's own ids (x-api numeric ids, Bluesky
DIDs, Mastodon ID@INSTANCE): a friend is the job's user whose id is its upstream id,
on both stores; on SQLite without a look-up per edge (the fast path), and against the
job's users as they are at export, however late they were imported."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from friendscrape.commands.graph_files import kept
from friendscrape.models import FriendList, Status, User
from friendscrape.stores import sqlite_graph
from friendscrape.stores.base import EdgeList, Store
from friendscrape.stores.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# (platform, the job's users, the first user's friends as (name, upstream id))
JOBS = {
    "x-api": (
        [User("10", "ada", 3), User("200", "bob", 2), User("3000", "cy", 2)],
        [("bob", "200"), ("someone", "999"), ("cy", "3000")],
    ),
    "bluesky": (
        [
            User("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "ada.bsky.social"),
            User("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "bob.bsky.social"),
            User("did:web:cy.example", "cy.example"),
        ],
        [
            ("bob.bsky.social", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"),
            ("someone.bsky.social", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"),
            ("cy.example", "did:web:cy.example"),
        ],
    ),
    "mastodon": (
        [
            User("1@mast.example", "ada@mast.example"),
            User("22@mast.example", "bob@mast.example"),
            User("333@other.example", "cy@other.example"),
        ],
        [
            ("bob@mast.example", "22@mast.example"),
            ("someone@mast.example", "9@mast.example"),
            ("cy@other.example", "333@other.example"),
        ],
    ),
}


def _result(platform: str, user: User, friends: list[tuple[str, str]]) -> FriendList:
    return FriendList(
        user_id=user.user_id,
        screen_name=user.screen_name,
        status=Status.OK,
        source=platform,
        partition=1,
        start_at=T0,
        end_at=T0,
        friend_names=tuple(name for name, _ in friends),
        friend_ids=tuple(uid for _, uid in friends),
        following_count=len(friends),
        truncated=False,
    )


async def _edges(store: Store) -> dict[str, EdgeList]:
    return {e.source_id: e async for e in store.edge_lists()}


@pytest.mark.parametrize("platform", list(JOBS))
async def test_friends_are_the_jobs_users_by_their_upstream_ids(
    store: Store, platform: str
) -> None:
    users, friends = JOBS[platform]
    await store.import_users(users)
    await store.plan_partitions(1)
    await store.save([_result(platform, users[0], friends)])
    edge = (await _edges(store))[users[0].user_id]
    assert edge.targets == [uid for _, uid in friends]
    assert list(edge.known) == [True, False, True]
    assert edge.known == [True, False, True]
    within = kept(edge, within=True)
    assert within.targets == [friends[0][1], friends[2][1]]
    assert within.names == [friends[0][0], friends[2][0]]


@pytest.mark.parametrize("platform", list(JOBS))
async def test_users_imported_after_the_save_are_matched_by_the_export(
    store: Store, platform: str
) -> None:
    users, friends = JOBS[platform]
    await store.import_users(users[:2])
    await store.plan_partitions(1)
    await store.save([_result(platform, users[0], friends)])
    assert list((await _edges(store))[users[0].user_id].known) == [True, False, False]
    await store.import_users(users[2:])  # a new generation of the job's users
    edge = (await _edges(store))[users[0].user_id]
    assert list(edge.known) == [True, False, True]
    assert edge.targets == [uid for _, uid in friends]


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
async def test_sqlite_takes_the_fast_path_only_where_every_id_is_the_platforms(
    store: Store,
) -> None:
    assert isinstance(store, SqliteStore)
    users, friends = JOBS["x-api"]
    await store.import_users(users)
    await store.plan_partitions(1)
    await store.save([_result("x-api", users[0], friends)])
    conn = sqlite3.connect(store.path)
    try:
        sqlite_graph.register(conn)
        assert sqlite_graph.upstream_platforms(conn) == ("x-api",)
        query = sqlite_graph.edges_query(conn)
        assert query.job_ids.get() == frozenset(u.user_id for u in users)
        assert "job_keys" not in query.sql  # no look-up table: every list is direct
    finally:
        conn.close()
    # A user imported by handle: ids are no longer all x-api's, names are matched again.
    await store.import_users([User("dee", "dee", 1)])
    await store.save([_result("x-api", users[1], [("DEE", "4444"), ("ada", "10")])])
    edges = await _edges(store)
    assert edges["200"].targets == ["dee", "10"]
    assert list(edges["200"].known) == [True, True]
    assert edges["10"].targets == [uid for _, uid in friends]


def test_an_empty_job_takes_no_fast_path(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "empty.db")
    try:
        conn.execute("CREATE TABLE users (user_id TEXT)")
        assert sqlite_graph.upstream_platforms(conn) == ()
        conn.executemany("INSERT INTO users VALUES (?)", [("1@a.example",), ("2@b.example",)])
        assert sqlite_graph.upstream_platforms(conn) == ("mastodon",)
        conn.execute("INSERT INTO users VALUES ('alice@a.example')")
        assert sqlite_graph.upstream_platforms(conn) == ()
    finally:
        conn.close()
