"""SQLite saves a batch of results several to a statement: the rows read back are those
written one by one (a user twice in a batch: the later row, attempts added up), and
a new store has pages of 64 KiB. Batches of any size are written by statements of a few
sizes only (the connection keeps each statement it prepared, with the lists last bound
to it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from friendscrape.models import FriendList
from friendscrape.stores import lists_codec
from friendscrape.stores.sqlite import SqliteStore
from friendscrape.stores.sqlite_runs import statement_sizes
from storefixtures import ok_result


def _result(user_id: str, names: tuple[str, ...], *, attempts: int = 1) -> FriendList:
    return ok_result(
        user_id,
        names,
        ids=tuple(str(1000 + n) for n in range(len(names))),
        source="x-api",
        screen_name=f"name_{user_id}",
        following_count=len(names),
        attempts=attempts,
    )


async def test_a_batch_of_121_results_with_a_repeat_reads_back_as_saved_one_by_one(
    tmp_path: Path,
) -> None:
    batch = [_result(str(n), (f"a{n}", 'b\u00e9"q\\', "\U0001f600")) for n in range(120)]
    # User 7 again, later in the batch and past the first statement's rows.
    batch.append(_result("7", ("only_this",), attempts=2))
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.save(batch)
        read = {r.user_id: r async for r in store.results()}
    finally:
        await store.close()
    assert len(read) == 120
    assert read["7"].friend_names == ("only_this",)
    assert read["7"].friend_ids == ("1000",)
    assert read["7"].attempts == 3  # 1 + 2, as two saves in a row add them
    assert read["119"].friend_names == ("a119", 'b\u00e9"q\\', "\U0001f600")
    assert read["0"].friend_ids == ("1000", "1001", "1002")
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        (names,) = conn.execute(
            "SELECT friend_names FROM user_friends WHERE user_id = '5'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()
    # Stored compactly: a blob (too short to deflate, its UTF-8 kept as it is).
    assert isinstance(names, bytes)
    assert names[0] == lists_codec.NAMES_RAW
    assert lists_codec.decode(names) == ["a5", 'b\u00e9"q\\', "\U0001f600"]
    assert "\u00e9".encode() in names
    assert page_size == 65536  # new stores: 64 KiB pages (compact lists pack closer)


def test_a_batch_of_any_size_is_written_by_statements_of_seven_sizes() -> None:
    seen: set[int] = set()
    for count in range(260):
        sizes = statement_sizes(count)
        assert sum(sizes) == count
        assert sizes == sorted(sizes, reverse=True)
        assert len([s for s in sizes if s < 50]) <= 5
        seen.update(sizes)
    assert seen == {50, 32, 16, 8, 4, 2, 1}


async def test_batches_of_every_size_up_to_49_read_back_exactly_with_a_repeat(
    tmp_path: Path,
) -> None:
    """Batches cut short by the flush interval: each of sizes 1-49 (their users
    overlapping, the later save's row kept, attempts added up), written by statements
    of the few sizes above."""
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    expected: dict[str, tuple[tuple[str, ...], int]] = {}
    try:
        for size in range(1, 50):
            batch = [_result(str(size + n), (f"s{size}", f"n{n}")) for n in range(size)]
            await store.save(batch)
            for r in batch:
                attempts = expected.get(r.user_id, ((), 0))[1]
                expected[r.user_id] = (r.friend_names, attempts + 1)
        read = {r.user_id: (r.friend_names, r.attempts) async for r in store.results()}
    finally:
        await store.close()
    assert read == expected


def test_a_batch_of_any_size_is_written_by_statements_of_eight_sizes_at_100_rows() -> None:
    seen: set[int] = set()
    for count in range(460):
        sizes = statement_sizes(count, 100)
        assert sum(sizes) == count
        assert len([s for s in sizes if s < 100]) <= 6
        seen.update(sizes)
    assert seen == {100, 64, 32, 16, 8, 4, 2, 1}


async def test_a_run_s_batch_of_100_is_one_statement_where_sqlite_takes_its_parameters(
    tmp_path: Path,
) -> None:
    """One statement for the 100 rows of a run's batch (each statement hands the
    interpreter's lock to the event loop and back); two where SQLite takes at most 999
    parameters (its limit before 3.32); the rows read back the same either way."""
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    statements: list[str] = []
    try:
        conn = store._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        await store.save([_result(str(n), (f"a{n}",)) for n in range(100)])
        wide = [s for s in statements if "INSERT INTO user_friends" in s]
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        statements.clear()
        await store.save([_result(str(n), (f"b{n}",)) for n in range(100, 200)])
        narrow = [s for s in statements if "INSERT INTO user_friends" in s]
        conn.set_trace_callback(None)
        read = {r.user_id: r.friend_names async for r in store.results()}
    finally:
        await store.close()
    assert len(wide) == 1
    assert len(narrow) == 2
    assert read == {str(n): (f"{'a' if n < 100 else 'b'}{n}",) for n in range(200)}
