"""The figures status and report read are counted in the store, on every store: each
user's newest result once, grouped per partition and time bucket or per friend-count bin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import Store

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def users(ids: list[str]) -> list[User]:
    return [User(user_id=i, screen_name=f"name_{i}") for i in ids]


def result(
    user_id: str,
    *,
    status: Status = Status.OK,
    names: tuple[str, ...] = ("alice", "bob"),
    start: datetime = T0,
) -> FriendList:
    return FriendList(
        user_id,
        f"name_{user_id}",
        status,
        "twitter-mobile",
        1,
        start,
        start + timedelta(seconds=3),
        friend_names=names,
    )


async def test_finished_counts_group_each_users_newest_result_by_partition_and_bucket(
    store: Store,
) -> None:
    await store.import_users(users(["1", "2", "3", "4"]))
    await store.plan_partitions(2)  # 1, 2 -> partition 1; 3, 4 -> partition 2
    hour = 3600
    await store.save(
        [
            result("1", status=Status.FAILED, names=()),
            result("2", start=T0 + timedelta(hours=1)),
            result("3", start=T0 + timedelta(hours=1)),
            result("4", start=T0 + timedelta(hours=3)),
        ]
    )
    # User 1 collected again later: only its newest row counts.
    await store.save([result("1", start=T0 + timedelta(hours=3))])
    base = int((T0 + timedelta(seconds=3)).timestamp()) // hour
    assert await store.finished_counts(bucket=hour) == [
        (1, base + 1, 1),
        (1, base + 3, 1),
        (2, base + 1, 1),
        (2, base + 3, 1),
    ]


async def test_friend_histogram_counts_ok_users_per_bin(store: Store) -> None:
    assert await store.friend_histogram(bins=4) == (1, [])
    await store.save(
        [
            result("1", names=tuple(f"n{i}" for i in range(7))),
            result("2", names=("a",)),
            result("3", names=("a", "b")),
            result("4", status=Status.PROTECTED, names=()),
        ]
    )
    # Counts 7, 1, 2 in four bins of width 2 (0-1, 2-3, 4-5, 6-7).
    assert await store.friend_histogram(bins=4) == (2, [(0, 1), (1, 1), (3, 1)])
