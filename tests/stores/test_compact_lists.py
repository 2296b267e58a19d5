"""Friend lists kept compact: a store written by an older version (JSON text lists, dense
keys) still opens and exports byte for byte as it did; the same job written now keeps
blobs and exports the same bytes; any list round-trips exactly on both stores."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from friendscrape.models import FriendList, Status, User
from friendscrape.stores import lists_codec
from friendscrape.stores import sqlite as sqlite_module
from friendscrape.stores.base import Store
from friendscrape.stores.sqlite import SqliteStore
from storefixtures import ok_result

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "v1"
"""A store written by the version before compact lists (by ``build_job`` below, then),
and its exports as that version wrote them, but for two deliberate changes since: an edge
to a friend with no id has target_id ``name:NAME`` (was empty), and GraphML and GEXF list
the friends outside the job as nodes, and ``in_job`` on every node."""

EXPORTS = {
    "all.jsonl": ["--format", "jsonl"],
    "all.csv": ["--format", "csv"],
    # A table's file named .edges or .nodes is CSV only when --as says so.
    "all.edges": ["--format", "edges", "--as", "csv"],
    "all.nodes": ["--format", "nodes", "--as", "csv"],
    "all.graphml": ["--format", "graphml"],
    "all.gexf": ["--format", "gexf"],
    "within.edges": ["--format", "edges", "--within", "--as", "csv"],
    "p1.edges": ["--format", "edges", "--partition", "1", "--as", "csv"],
}

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _result(
    uid: str,
    name: str,
    names: list[str],
    ids: tuple[str, ...] = (),
    *,
    source: str = "twitter-mobile",
    n: int = 0,
    **fields: object,
) -> FriendList:
    values: dict[str, object] = {
        "status": Status.OK,
        "partition": 1,
        "truncated": False,
        "following_count": None,
        "error": None,
        **fields,
    }
    return FriendList(
        user_id=uid,
        screen_name=name,
        source=source,
        start_at=T0 + timedelta(seconds=n),
        end_at=T0 + timedelta(seconds=n, milliseconds=1500),
        friend_names=tuple(names),
        friend_ids=ids,
        attempts=1,
        **values,  # type: ignore[arg-type]
    )


async def build_job(path: Path) -> None:
    """The fixture's job: names-only lists saved before the plan (not resolved), after it
    (resolved at save), lists with upstream ids, empty and failed ones, a result of no
    user of the job, and an import after saves (their keys stale)."""
    store = SqliteStore(path)
    await store.open()
    users = [
        User("10", "Ada", 3),
        User("200", "bob", 5),
        User("ab", "10", None),
        User("AB", "Zed", 2),
        User('q"1', "Quote\\d, x", None),
        User("3000", "", 1),
        User("\u00e9t\u00e9", "\u00c9mile", 4),
        User("42", "名前", 2),
        User("7", "seven", 0),
    ]
    await store.import_users(users)
    await store.save([_result("7", "seven", ["ADA", "nobody"], n=1)])
    await store.plan_partitions(2)
    await store.save(
        [
            _result(
                "10",
                "Ada",
                ["bob", "ZED", "out,side", 'qu"ote', "名前", "\u00e9t\u00e9"],
                n=2,
                following_count=6,
            ),
            _result("200", "bob", ["ada", "10", "ab"], n=3, truncated=True, following_count=9),
            _result("ab", "10", [], n=4, following_count=0),
            _result("AB", "Zed", ["Ada", "x"], ("10", "999"), source="x-api", n=5),
            _result('q"1', "Quote\\d, x", [], n=6, status=Status.FAILED, error="http_404: gone"),
            _result(
                "42",
                "名前",
                ["emoji😀", "\\back", "tab\there", ""],
                ("1", "2", "3", "4"),
                source="bluesky",
                n=7,
            ),
            _result("999", "outsider", ["Ada"], n=8, partition=2),
        ]
    )
    await store.import_users([User("500", "nobody", None)])
    await store.save([_result("3000", "", ["nobody", "ADA", "200"], n=9)])
    await store.close()


def _export(store: Path, out: Path) -> dict[str, bytes]:
    """Every export of the store, each by its own ``friendscrape export`` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIENDSCRAPE_")}
    got = {}
    for name, args in EXPORTS.items():
        target = out / name
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "friendscrape.cli",
                "export",
                "--store",
                f"sqlite:///{store}",
                *args,
                "--output",
                str(target),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr)
        got[name] = target.read_bytes()
    return got


def _expected() -> dict[str, bytes]:
    return {name: (FIXTURE / "expected" / name).read_bytes() for name in EXPORTS}


def _column_types(path: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT typeof(friend_names), typeof(friend_keys) FROM user_friends"
            " WHERE friend_count > 0"
        ).fetchall()
    finally:
        conn.close()
    return {(str(a), str(b)) for a, b in rows}


def test_a_store_of_the_older_version_exports_byte_identically(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURE / "friendscrape.db", db)
    assert _column_types(db) == {("text", "text"), ("text", "null")}
    (tmp_path / "read").mkdir()
    assert _export(db, tmp_path / "read") == _expected()
    # Opened to write (its schema brought up to date) and written to: its old rows keep
    # their JSON text and still export as before, beside a row written now.
    asyncio.run(_save_one(db))
    assert ("text", "text") in _column_types(db)
    assert ("blob", "blob") in _column_types(db)
    (tmp_path / "written").mkdir()
    got, expected = _export(db, tmp_path / "written"), _expected()
    new = [line for line in got["all.jsonl"].splitlines() if b'"user_id": "500"' in line]
    assert len(new) == 1
    assert b'"friend_names": ["Ada", "zed", "nobody"]' in new[0]
    for name in ("all.jsonl", "all.csv"):
        others = [line for line in got[name].splitlines() if line not in new]
        others = [line for line in others if not line.startswith(b"500,")]
        assert others == expected[name].splitlines(), name


async def _save_one(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        await store.save([_result("500", "nobody", ["Ada", "zed", "nobody"], n=20)])
    finally:
        await store.close()


def test_the_same_job_written_now_is_compact_and_exports_the_same_bytes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "new.db"
    asyncio.run(build_job(db))
    # Every list carries sparse keys: the import after the saves matched again those
    # saved before it (the one saved before the plan, and those with upstream ids).
    assert _column_types(db) == {("blob", "blob")}
    (tmp_path / "out").mkdir()
    assert _export(db, tmp_path / "out") == _expected()


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_a_store_of_16_kib_pages_keeps_them_and_exports_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The version before 64 KiB pages wrote compact lists on 16 KiB pages: such a store
    # keeps its pages when written to now, and exports what the older versions did.
    db = tmp_path / "pages16.db"
    monkeypatch.setattr(sqlite_module, "PAGE_SIZE", 16384)
    asyncio.run(build_job(db))
    monkeypatch.undo()
    assert _page_size(db) == 16384
    (tmp_path / "out").mkdir()
    assert _export(db, tmp_path / "out") == _expected()
    asyncio.run(_save_one(db))
    assert _page_size(db) == 16384
    new = tmp_path / "new.db"
    asyncio.run(build_job(new))
    assert _page_size(new) == sqlite_module.PAGE_SIZE == 65536


AWKWARD = st.lists(
    st.text(
        st.characters(exclude_categories=["Cs"]),  # what UTF-8 cannot hold either way
        max_size=20,
    )
    | st.sampled_from(["", ",", '"', "\\", "\n", "\x00", "a,b", 'q"q', "\u00e9", "😀"]),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(names=AWKWARD, deflate=st.booleans())
def test_any_list_round_trips_through_the_codec(names: list[str], deflate: bool) -> None:
    stored = lists_codec.encode(names, deflate=deflate)
    assert lists_codec.decode(stored) == names
    assert lists_codec.decode(lists_codec.as_json(stored)) == names
    pairs = [(i, n) for i, n in enumerate(names) if i % 3 == 0]
    keys = lists_codec.decode_keys(lists_codec.encode_keys(pairs), len(names))
    assert keys == [n if i % 3 == 0 else None for i, n in enumerate(names)]


@pytest.mark.parametrize("at", [0, 1, 499, 999])
def test_one_line_feed_anywhere_in_a_list_keeps_it_json(at: int) -> None:
    names = [f"name_{i:05d}" for i in range(1000)]
    assert lists_codec.encode(names, deflate=False) == b"\x01" + "\n".join(names).encode()
    names[at] = names[at][:3] + "\n" + names[at][3:]
    stored = lists_codec.encode(names, deflate=False)
    assert isinstance(stored, bytes)
    assert stored[0] == lists_codec.JSON_RAW
    assert lists_codec.decode(stored) == names


def test_a_joined_text_given_is_stored_as_it_is_and_a_line_feed_in_a_value_still_seen() -> None:
    names = ["ab", "cd"]
    assert lists_codec.encode(names, deflate=False, joined="ab\ncd") == b"\x01ab\ncd"
    # The caller's text is taken, not joined again (whose it is is the caller's word).
    assert lists_codec.encode(names, deflate=False, joined="xy\nzz") == b"\x01xy\nzz"
    # A value that holds a line feed is still seen from the text's count: JSON then.
    held = ["a\nb", "c"]
    stored = lists_codec.encode(held, deflate=False, joined="a\nb\nc")
    assert isinstance(stored, bytes)
    assert stored[0] == lists_codec.JSON_RAW
    assert lists_codec.decode(stored) == held


def test_a_joined_text_known_line_free_is_not_counted_and_stored_the_same() -> None:
    names = [f"name_{i:05d}" for i in range(1000)]
    joined = "\n".join(names)
    plain = lists_codec.encode(names, deflate=False)
    assert lists_codec.encode(names, deflate=False, joined=joined, line_free=True) == plain
    # The caller's word is taken: its line feeds are not counted against the values.
    assert lists_codec.encode(["ab"], deflate=False, joined="a\nb", line_free=True) == b"\x01a\nb"
    # Without a joined text the list is joined and counted whatever the caller says.
    held = ["a\nb", "c"]
    stored = lists_codec.encode(held, deflate=False, line_free=True)
    assert isinstance(stored, bytes)
    assert stored[0] == lists_codec.JSON_RAW
    assert lists_codec.decode(stored) == held


def test_a_long_list_is_deflated_and_round_trips() -> None:
    names = [f"name_{i:05d}" for i in range(5000)]
    stored = lists_codec.encode(names)
    assert isinstance(stored, bytes)
    assert stored[0] == lists_codec.NAMES_DEFLATED
    assert len(stored) < len("\n".join(names)) / 2
    assert lists_codec.decode(stored) == names


def test_an_unknown_format_is_refused_not_misread() -> None:
    with pytest.raises(lists_codec.DamagedListError, match="unknown format"):
        lists_codec.decode(b"\x7fabc")
    with pytest.raises(lists_codec.DamagedListError, match="unknown format"):
        lists_codec.decode_keys(b"\x01abc", 3)
    # A blob whose tag is right but whose body is not: the decoder's own error is not
    # what reaches a user.
    broken = bytes([lists_codec.NAMES_DEFLATED]) + b"not deflate"
    with pytest.raises(lists_codec.DamagedListError, match="cannot be read"):
        lists_codec.decode(broken)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "edges", "graphml"])
def test_a_damaged_list_is_one_line_not_a_traceback(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "job.db"
    asyncio.run(build_job(db))
    with sqlite3.connect(db) as conn:
        changed = conn.execute(
            "UPDATE user_friends SET friend_names = x'ff00' WHERE user_id = "
            "(SELECT user_id FROM user_friends WHERE friend_count > 0 LIMIT 1)"
        ).rowcount
    assert changed == 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIENDSCRAPE_")}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "friendscrape.cli", "export", "--store", f"sqlite:///{db}"),
            *("--format", fmt, "--output", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "a friend list in the store cannot be read" in lines[0]
    assert not (tmp_path / "out").exists()


LISTS: list[tuple[str, ...]] = [
    (),
    ("",),
    ("a,b", 'q"q', "\\", "", "tab\tx", "line\nfeed", "\u00e9t\u00e9", "😀", "名前"),
    tuple(f"friend_{i}" for i in range(5000)),
    ("solo",),
]


async def test_lists_round_trip_on_both_stores(store: Store) -> None:
    """Each list read back exactly, names-only and with upstream ids, on SQLite (blobs)
    and BigQuery (arrays, through the local server)."""
    saved = []
    for n, names in enumerate(LISTS):
        saved.append(ok_result(f"u{n}", names))
        ids = tuple(f"id{i}" for i in range(len(names)))
        saved.append(ok_result(f"v{n}", names, ids=ids, source="x-api"))
    await store.save(saved)
    got = {r.user_id: r async for r in store.results()}
    for result in saved:
        assert got[result.user_id].friend_names == result.friend_names, result.user_id
        assert got[result.user_id].friend_ids == result.friend_ids, result.user_id
    if not isinstance(store, SqliteStore):
        return  # BigQuery keeps arrays, as before; its graph view is slow on the local server
    edges = {e.source_id: e async for e in store.edge_lists()}
    for result in saved:
        if result.friend_names:
            assert list(edges[result.user_id].names) == list(result.friend_names)


async def test_a_list_saved_with_the_parsers_joined_text_is_stored_byte_identically(
    tmp_path: Path,
) -> None:
    names = tuple(f"user_{n}" for n in range(1000))
    ids = tuple(str(10**19 + n) for n in range(1000))
    plain = ok_result("1", names, ids=ids, source="x-api")
    joined = dataclasses.replace(
        ok_result("2", names, ids=ids, source="x-api"),
        joined=("\n".join(names), "\n".join(ids)),
    )
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.save([plain, joined])
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        rows = conn.execute(
            "SELECT friend_names, friend_ids, list_hash FROM user_friends ORDER BY user_id"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert lists_codec.decode(rows[1][0]) == list(names)
