"""The Store contract: the same scenarios on SQLite and on BigQuery (local server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import planning_reference as planning
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.errors import StoreUnavailableError, UsageError
from friendscrape.models import FriendList, Status, User
from friendscrape.stores import open_store
from friendscrape.stores.base import Store

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

# Numeric ids of different lengths (text order would differ), then non-numeric ids,
# one numeric-looking id too large for INT64 (sorts as text).
IDS = ["9", "10", "100", "7", "2000", "55", "3", "abc", "Zed", "99999999999999999999"]


def users(ids: list[str]) -> list[User]:
    return [User(user_id=i, screen_name=f"name_{i}", following_count=len(i)) for i in ids]


def result(
    user_id: str,
    *,
    partition: int = 1,
    status: Status = Status.OK,
    names: tuple[str, ...] = ("alice", "bob"),
    ids: tuple[str, ...] = (),
    start: datetime = T0,
    seconds: int = 3,
    error: str | None = None,
    truncated: bool = False,
) -> FriendList:
    return FriendList(
        user_id=user_id,
        screen_name=f"name_{user_id}",
        status=status,
        source="twitter-mobile",
        partition=partition,
        start_at=start,
        end_at=start + timedelta(seconds=seconds),
        friend_names=names,
        friend_ids=ids,
        following_count=len(names),
        truncated=truncated,
        error=error,
    )


async def all_results(store: Store) -> list[FriendList]:
    return [item async for item in store.results()]


async def all_pending(store: Store, number: int, *, limit: int, retry_failed: bool) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        page = await store.pending_users(
            number, retry_failed=retry_failed, cursor=cursor, limit=limit
        )
        assert len(page.users) <= limit
        seen.extend(u.user_id for u in page.users)
        if page.cursor is None:
            return seen
        cursor = page.cursor
    pytest.fail("pending_users never returned a final page")


async def test_empty_store(store: Store) -> None:
    assert await store.user_count() == 0
    assert await store.result_count() == 0
    assert await store.partitions() == []
    assert await store.status_rows() == []
    assert await all_results(store) == []


async def test_import_is_an_upsert(store: Store) -> None:
    first = await store.import_users(users(["1", "2", "3"]))
    assert (first.read, first.added, first.updated) == (3, 3, 0)

    again = await store.import_users(users(["1", "2", "3"]))
    assert (again.read, again.added, again.updated) == (3, 0, 0)

    changed = await store.import_users(
        [User("2", "renamed"), User("3", "name_3"), User("4", "name_4")]
    )
    assert (changed.read, changed.added, changed.updated) == (3, 1, 1)
    assert await store.user_count() == 4

    await store.plan_partitions(1)
    page = await store.pending_users(1, retry_failed=False, cursor=None, limit=10)
    by_id = {u.user_id: u for u in page.users}
    assert by_id["2"].screen_name == "renamed"
    # A re-import without a following count keeps the one known.
    assert by_id["2"].following_count == 1


@pytest.mark.parametrize("count", [1, 3, 4, 12])
async def test_plan_is_ntile_in_plan_order(store: Store, count: int) -> None:
    await store.import_users(users(IDS))
    expected = planning.plan(IDS, count)

    assert await store.plan_partitions(count) == expected
    assert await store.partitions() == expected
    numbers = [p.number for p in expected]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_plan_orders_numbers_numerically_and_text_last(store: Store) -> None:
    await store.import_users(users(IDS))
    await store.plan_partitions(1)
    order = await all_pending(store, 1, limit=3, retry_failed=False)
    assert order == ["3", "7", "9", "10", "55", "100", "2000", "99999999999999999999", "Zed", "abc"]


async def test_replanning_replaces_the_plan(store: Store) -> None:
    await store.import_users(users(IDS))
    await store.plan_partitions(5)
    plan = await store.plan_partitions(2)
    assert [p.user_count for p in plan] == [5, 5]
    assert await store.partitions() == plan
    assert await all_pending(store, 3, limit=10, retry_failed=False) == []


async def test_pending_pages_cover_each_user_once(store: Store) -> None:
    await store.import_users(users(IDS))
    plan = await store.plan_partitions(3)
    got: list[str] = []
    for part in plan:
        ids = await all_pending(store, part.number, limit=2, retry_failed=False)
        assert len(ids) == part.user_count
        assert ids[0] == part.min_user_id
        assert ids[-1] == part.max_user_id
        assert await store.pending_count(part.number, retry_failed=False) == part.user_count
        got.extend(ids)
    assert sorted(got) == sorted(IDS)


async def test_pending_skips_done_users_and_failed_only_on_request(store: Store) -> None:
    await store.import_users(users(IDS))
    await store.plan_partitions(1)
    await store.save(
        [
            result("3"),
            result("9", status=Status.PROTECTED, names=()),
            result("10", status=Status.FAILED, names=(), error="timeout after 6 attempts"),
        ]
    )
    pending = await all_pending(store, 1, limit=4, retry_failed=False)
    assert "3" not in pending
    assert "9" not in pending
    assert "10" not in pending
    assert len(pending) == len(IDS) - 3
    assert await store.pending_count(1, retry_failed=False) == len(IDS) - 3

    retrying = await all_pending(store, 1, limit=4, retry_failed=True)
    assert "10" in retrying
    assert "9" not in retrying
    assert await store.pending_count(1, retry_failed=True) == len(IDS) - 2


async def test_results_round_trip(store: Store) -> None:
    rows = [
        result("100", names=("ünïcode", "名前", "b"), ids=("1", "2", "3"), truncated=True),
        result("9", status=Status.NOT_FOUND, names=(), error="page said: not found"),
        result("10", partition=2, names=tuple(f"friend{i}" for i in range(2000))),
    ]
    await store.save(rows)
    got = await all_results(store)
    # One per user, numeric ids in numeric order.
    assert [r.user_id for r in got] == ["9", "10", "100"]
    assert got == sorted(rows, key=lambda r: int(r.user_id))
    assert got[2].friend_ids == ("1", "2", "3")
    assert got[1].friend_count == 2000
    assert all(r.start_at.tzinfo is not None for r in got)
    assert await store.result_count() == 3


async def test_save_again_upserts_and_sums_attempts(store: Store) -> None:
    await store.import_users(users(["1", "2"]))
    await store.save([result("1", status=Status.FAILED, names=(), error="503"), result("2")])
    retried = result("1", names=("carol",), start=T0 + timedelta(hours=1))
    await store.save([retried])

    assert await store.result_count() == 2
    got = {r.user_id: r for r in await all_results(store)}
    assert got["1"].status is Status.OK
    assert got["1"].friend_names == ("carol",)
    assert got["1"].start_at == retried.start_at
    assert got["1"].error is None
    assert got["1"].attempts == 2
    assert got["2"].attempts == 1


async def test_status_rows_one_per_user_newest(store: Store) -> None:
    await store.save([result("5", status=Status.FAILED, names=()), result("6", partition=2)])
    await store.save([result("5", names=("x", "y", "z"), start=T0 + timedelta(minutes=5))])
    rows = sorted(await store.status_rows(), key=lambda r: r.user_id)
    assert [(r.user_id, r.partition, r.status, r.friend_count) for r in rows] == [
        ("5", 1, "ok", 3),
        ("6", 2, "ok", 2),
    ]
    assert rows[0].start_at == T0 + timedelta(minutes=5)
    assert rows[0].end_at == T0 + timedelta(minutes=5, seconds=3)
    assert rows[0].start_at.tzinfo is not None
    assert rows[0].end_at.tzinfo is not None


async def test_save_nothing_is_a_no_op(store: Store) -> None:
    await store.save([])
    assert await store.result_count() == 0


async def test_close_twice_is_safe(store_settings: Settings) -> None:
    opened = open_store(store_config(store_settings), create=True)
    await opened.open()
    await opened.close()
    await opened.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "bigquery://",
        "bigquery://only-project",
        "bigquery://Bad_Project/dataset",
        "bigquery://test-project/data-set",
        "bigquery://test-project/ds`; DROP TABLE users; --",
        "bigquery://test-project/ds/extra",
        "postgres://host/db",
        "no-scheme",
    ],
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        open_store(store_config(Settings(store=url)))


async def test_reading_commands_do_not_create_a_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreUnavailableError, match="no SQLite store"):
        await open_store(store_config(Settings(store=f"sqlite:///{missing}"))).open()
    assert not missing.exists()


async def test_looked_up_ids_come_back_with_the_pending_users(store: Store) -> None:
    await store.import_users(users(["1", "2", "3"]))
    await store.plan_partitions(1)
    await store.save_resolved({"2": "900", "3": "901"})
    await store.save_resolved({"3": "901"})  # saved again (a retried call): harmless
    page = await store.pending_users(1, retry_failed=False, cursor=None, limit=10)
    by_id = {u.user_id: u.resolved_id for u in page.users}
    assert by_id == {"1": None, "2": "900", "3": "901"}
    await store.save_resolved({})


async def test_a_page_of_pending_users_comes_back_as_imported(store: Store) -> None:
    odd = [
        User(user_id="42", screen_name='qu"ote\\back', following_count=None),
        User(user_id="7", screen_name="ünïcode 名前 🙂", following_count=0),
        User(user_id="1799999999999999999", screen_name="", following_count=2**40),
        User(user_id="x y", screen_name="tab\there", following_count=3),
    ]
    await store.import_users(odd)
    await store.plan_partitions(1)
    await store.save_resolved({"x y": "901"})
    first = await store.pending_users(1, retry_failed=False, cursor=None, limit=3)
    rest = await store.pending_users(1, retry_failed=False, cursor=first.cursor, limit=3)
    assert first.cursor is not None
    assert rest.cursor is None
    got = {u.user_id: u for u in (*first.users, *rest.users)}
    for user in odd:
        assert got[user.user_id].screen_name == user.screen_name
        assert got[user.user_id].following_count == user.following_count
    assert got["x y"].resolved_id == "901"
    assert got["42"].resolved_id is None
    assert [u.user_id for u in first.users] == ["7", "42", "1799999999999999999"]
