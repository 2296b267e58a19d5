"""Users imported after the plan: visible in status, placed without moving anyone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from friendscrape.commands.progress.figures import gather_status
from friendscrape.commands.status.command import to_json
from friendscrape.commands.status.table import render_table
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PLANNED = [str(n) for n in range(10, 101, 10)]  # 10..50 | 60..100 in two partitions
LATE = ["5", "55", "75", "500", "zz"]


def users(ids: list[str]) -> list[User]:
    return [User(i, f"name_{i}", 3) for i in ids]


def done(user_id: str) -> FriendList:
    return FriendList(
        user_id=user_id,
        screen_name=f"name_{user_id}",
        status=Status.OK,
        source="twitter-mobile",
        partition=0,
        start_at=T0,
        end_at=T0 + timedelta(seconds=1),
        friend_names=("a",),
    )


async def pending(store: Store, partition: int) -> list[str]:
    page = await store.pending_users(partition, retry_failed=False, cursor=None, limit=100)
    assert page.cursor is None
    return [u.user_id for u in page.users]


async def test_status_counts_users_outside_the_plan_so_the_job_is_not_done(store: Store) -> None:
    await store.import_users(users(PLANNED))
    await store.plan_partitions(2)
    await store.save([done(uid) for uid in PLANNED])
    await store.import_users(users(LATE))

    report = await gather_status(store, now=T0 + timedelta(hours=1))
    assert report.total.remaining == len(LATE)
    assert report.total.eta_seconds != 0.0
    assert report.unplaced == len(LATE)
    assert to_json(report)["unplaced_users"] == len(LATE)
    table = render_table(report)
    assert f"{len(LATE)} users are outside the partition plan" in table
    assert "friendscrape partitions place" in table


async def test_place_puts_late_users_by_id_range_and_moves_no_one(store: Store) -> None:
    await store.import_users(users(PLANNED))
    await store.plan_partitions(2)
    assert await store.unplaced_count() == 0
    await store.save([done(uid) for uid in PLANNED[:5]])  # partition 1 finished
    await store.import_users(users(LATE))
    assert await store.unplaced_count() == len(LATE)
    before_p2 = await pending(store, 2)

    placed = await store.place_unplaced()

    # 5 is before the first range; 55 falls between the ranges (goes to the later one);
    # 75 inside partition 2; 500 and the text id zz past the last range.
    assert placed == {1: 1, 2: 4}
    assert await store.unplaced_count() == 0
    assert await pending(store, 1) == ["5"], "the finished partition gains only the late user"
    assert await pending(store, 2) == [*before_p2, "55", "75", "500", "zz"], (
        "planned users keep their order; placed ones follow"
    )
    plan = {p.number: p for p in await store.partitions()}
    assert (plan[1].user_count, plan[1].min_user_id, plan[1].max_user_id) == (6, "5", "50")
    assert (plan[2].user_count, plan[2].min_user_id, plan[2].max_user_id) == (9, "55", "zz")
    assert await store.place_unplaced() == {}, "placing again changes nothing"


async def test_no_plan_means_nothing_is_unplaced(store: Store) -> None:
    await store.import_users(users(PLANNED))
    assert await store.unplaced_count() == 0
    assert await store.place_unplaced() == {}
