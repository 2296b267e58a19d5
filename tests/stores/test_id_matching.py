"""Lists with upstream ids off the export's fast path are matched at save, with the
filter of the job's keys, to exactly the targets the export's own match gives; lists of
the fast path are left alone; lists saved before a later import, or before the filter
was ready, are matched again in bulk (``sqlite_keys.rematch``) or by later saves."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from friendscrape.models import FriendList, User
from friendscrape.stores import lists_codec, sqlite_graph, sqlite_keys, sqlite_match, sqlite_runs
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_keys import SaveMatcher
from storefixtures import ok_result
from stores.test_save_matching import NAMES, USERS, _planned


def _id_lists(rnd: random.Random, pool: list[str]) -> list[tuple[list[str], list[str]]]:
    """(names, ids) lists of every size and share of the job's keys, NUL-holding ones
    among them, and one whose ids do not pair with its names."""
    lists: list[tuple[list[str], list[str]]] = [([], [])]
    for size in (1, 3, 20, 200, 600):
        for share in (0.0, 0.05, 0.5, 1.0):
            names = [rnd.choice(pool) if rnd.random() < share else f"o{i}" for i in range(size)]
            ids = [rnd.choice(pool) if rnd.random() < share / 2 else f"9{i}" for i in range(size)]
            lists.append((names, ids))
    lists.append((list(NAMES), list(reversed(NAMES))))
    lists.append((["ada", "bob"], ["10"]))
    return lists


def _targets(pair: tuple[bytes | None, int], names: list[str], ids: list[str]) -> list[str]:
    assert pair[0] is not None
    if len(ids) != len(names):
        ids = []
    targets = list(ids) if ids else [""] * len(names)
    for position, key in lists_codec.key_pairs(pair[0]):
        targets[position] = key
    return targets


def test_lists_with_ids_match_at_save_as_the_export_matches_them(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    others = [User(f"h{i}.example", f"user{i}", None) for i in range(300)]
    asyncio.run(_planned(path, USERS + others))
    pool = NAMES + [u.user_id.upper() for u in others[:40]] + [u.screen_name for u in others]
    lists = _id_lists(random.Random(5), pool)
    encoded = [(msgspec.json.encode(n).decode(), msgspec.json.encode(i).decode()) for n, i in lists]
    conn = sqlite3.connect(path, isolation_level=None)
    matcher = SaveMatcher()
    matcher.prepare(conn, encoded)
    conn.execute("BEGIN IMMEDIATE")
    got = matcher.resolved_keys(
        conn,
        encoded,
        [n for n, _ in lists],
        ids=[i for _, i in lists],
        sources=["bluesky"] * len(lists),
    )
    # Without ids given (as before): left to the export.
    before = matcher.resolved_keys(conn, encoded[1:], [n for n, _ in lists[1:]])
    conn.execute("ROLLBACK")
    conn.close()
    gen = got[0][1]
    assert gen > 0
    assert all(g == gen for _, g in got)
    assert before == [(None, -1)] * (len(lists) - 1)
    key_map = sqlite_match.KeyMap(str(path))
    for pair, (names, ids) in zip(got, lists, strict=True):
        expected, _ = sqlite_match.match(names, ids if len(ids) == len(names) else [], key_map)
        assert _targets(pair, names, ids) == expected


def test_lists_of_the_fast_path_are_left_alone_at_save(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    asyncio.run(_planned(path, [User(str(100 + i), f"n{i}", None) for i in range(50)]))
    lists = [(["n1", "x"], ["101", "999"])]
    encoded = [(msgspec.json.encode(n).decode(), msgspec.json.encode(i).decode()) for n, i in lists]
    conn = sqlite3.connect(path, isolation_level=None)
    matcher = SaveMatcher()
    matcher.prepare(conn, encoded)
    conn.execute("BEGIN IMMEDIATE")
    names, ids = [lists[0][0]], [lists[0][1]]
    fast = matcher.resolved_keys(conn, encoded, names, ids=ids, sources=["x-api"])
    other = matcher.resolved_keys(conn, encoded, names, ids=ids, sources=["bluesky"])
    conn.execute("ROLLBACK")
    conn.close()
    assert fast == [(None, -1)]
    assert other[0][0] is not None
    assert lists_codec.key_pairs(other[0][0]) == [(0, "101")]


def _stored(path: Path) -> dict[str, tuple[bytes | None, int]]:
    conn = sqlite3.connect(path)
    try:
        return {
            u: (k, g)
            for u, k, g in conn.execute("SELECT user_id, friend_keys, keys_gen FROM user_friends")
        }
    finally:
        conn.close()


def _generation(path: Path) -> int | None:
    conn = sqlite3.connect(path)
    try:
        return sqlite_graph.generation(conn)
    finally:
        conn.close()


def _bluesky(user_id: str) -> FriendList:
    return ok_result(
        user_id,
        ("ada.bsky.social", "CY.example", "nobody.example"),
        ids=("did:plc:a", "did:plc:c", "did:plc:n"),
        source="bluesky",
        following_count=3,
    )


def _all_matched(path: Path, count: int, pairs: list[tuple[int, str]]) -> None:
    gen = _generation(path)
    stored = _stored(path)
    assert len(stored) == count
    for keys, kgen in stored.values():
        assert kgen == gen
        assert keys is not None
        assert lists_codec.key_pairs(keys) == pairs


async def test_a_later_import_matches_the_lists_saved_before_it(tmp_path: Path) -> None:
    path = tmp_path / "friendscrape.db"
    await _planned(path, [User("ada.bsky.social", "ada.bsky.social", None)])
    store = SqliteStore(path)
    await store.open()
    try:
        # More than one step of the bulk match.
        await store.save([_bluesky(f"u{i}") for i in range(sqlite_keys._REMATCH_STEP + 3)])
        await store.import_users([User("cy.example", "cy.example", None)])
    finally:
        await store.close()
    _all_matched(path, sqlite_keys._REMATCH_STEP + 3, [(0, "ada.bsky.social"), (1, "cy.example")])


async def test_lists_saved_before_the_filter_are_matched_by_later_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_keys, "_BUILD_HERE", 0)  # a job whose filter is built apart
    path = tmp_path / "friendscrape.db"
    await _planned(path, [User("ada.bsky.social", "ada.bsky.social", None)])
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save([_bluesky("first"), _bluesky("second")])
        thread = store._matcher._thread  # the filter's, started by the first save
        if thread is not None:
            thread.join()
        await store.save([_bluesky("third")])
    finally:
        await store.close()
    _all_matched(path, 3, [(0, "ada.bsky.social")])


def test_a_large_jobs_export_matches_what_save_left_as_the_dict_of_keys_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above _DICT_USERS users the export matches leftovers with the filter (bounded
    # memory) instead of a dict of every key: the same targets, NULs and case included.
    monkeypatch.setattr(sqlite_keys, "_DICT_USERS", 0)
    path = tmp_path / "friendscrape.db"
    others = [User(f"h{i}.example", f"user{i}", None) for i in range(300)]
    asyncio.run(_planned(path, USERS + others))
    pool = NAMES + [u.user_id.upper() for u in others[:40]] + [u.screen_name for u in others]
    key_map = sqlite_match.KeyMap(str(path))
    filtered = sqlite_keys.ExportKeys(str(path), key_map)
    try:
        for names, ids in _id_lists(random.Random(8), pool):
            paired = ids if len(ids) == len(names) else []
            for with_ids in (paired, []):
                assert filtered.match(names, with_ids) == key_map.match(names, with_ids)
        assert filtered._keys is not None  # the filter's way, not the dict's
    finally:
        filtered.close()


async def test_a_rename_matches_again_the_lists_naming_the_old_or_the_new_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "friendscrape.db"
    users = [User("1", "ada", None), User("2", "Bob", None), User("3", "cy", None)]
    await _planned(path, users)
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save(
            [
                ok_result("10", ("bob", "x")),  # the old name
                ok_result("11", ("cy", "y")),  # neither
                ok_result("12", ("z", "ROBERT")),  # the new name
                ok_result("13", ("ada", "did:x"), ids=("9", "did:x"), source="bluesky"),
            ]
        )
        done = await store.import_users([User("2", "robert", None)])
        assert done.updated == 1
    finally:
        await store.close()
    gen = _generation(path)
    stored = _stored(path)
    assert {u: g for u, (_, g) in stored.items()} == dict.fromkeys(stored, gen)
    assert {u: lists_codec.key_pairs(k) for u, (k, _) in stored.items() if k is not None} == {
        "10": [],
        "11": [(0, "3")],
        "12": [(1, "2")],
        "13": [(0, "1")],
    }


async def test_a_save_writes_no_json_text_of_lists_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists on the export's fast path (the job's platform's, never matched at save), and
    lists saved before the filter is ready, are saved without their JSON text; others
    still get theirs once it is, and are matched."""
    path = tmp_path / "friendscrape.db"
    # Ids all of the X API's kind: x-api is the job's platform, its lists on the fast path.
    await _planned(path, [User("101", "n1", None), User("103", "ada.bsky.social", None)])
    written: list[tuple[str, ...]] = []
    json_list = sqlite_runs._json_list

    def recording(values: Sequence[str]) -> str:
        written.append(tuple(values))
        return json_list(values)

    store = SqliteStore(path)
    await store.open()
    monkeypatch.setattr(sqlite_runs, "_json_list", recording)
    try:
        # Saved while no filter is ready: left to later saves, not read either.
        await store.save([ok_result("first", ("n1",), ids=("101",), source="x-api")])
        thread = store._matcher._thread  # the filter's, started by the first save
        if thread is not None:
            thread.join()
        x_api = ok_result("second", ("n1", "x"), ids=("101", "999"), source="x-api")
        await store.save([x_api, _bluesky("third")])
    finally:
        await store.close()
    assert written == [_bluesky("third").friend_names, _bluesky("third").friend_ids]
    stored = _stored(path)
    assert stored["second"] == (None, -1)
    assert stored["third"][0] is not None
    assert lists_codec.key_pairs(stored["third"][0]) == [(0, "103")]
