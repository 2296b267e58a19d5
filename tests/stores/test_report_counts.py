"""What the report counts in the store, on every store: ok lists truncated, incomplete or
short, and failed users per kind of error (each user's newest result once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import ListCounts, Store

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def result(
    user_id: str,
    *,
    status: Status = Status.OK,
    names: int = 0,
    following: int | None = None,
    truncated: bool = False,
    error: str | None = None,
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
        friend_names=tuple(f"n{i}" for i in range(names)),
        following_count=following,
        truncated=truncated,
        error=error,
    )


async def test_list_counts_tell_truncated_incomplete_and_short_lists(store: Store) -> None:
    assert await store.list_counts() == ListCounts(0, 0, 0, 0)
    await store.import_users([User(str(i), f"name_{i}") for i in range(1, 9)])
    await store.save(
        [
            result("1", names=10, following=10),  # complete
            result("2", names=10, following=200, truncated=True),  # capped, incomplete
            result("3", names=100, following=100, truncated=True),  # capped at its end
            result("4", names=5, following=None, truncated=True),  # capped, no count
            result("5", names=50, following=100),  # walked to the end, short
            result("6", names=995, following=1000),  # within 1%: not short
            result("7", status=Status.PROTECTED, following=300),  # not ok: not counted
            result("8", names=10, following=300, truncated=True),  # replaced below
        ]
    )
    await store.save([result("8", names=300, following=300, start=T0 + timedelta(hours=1))])
    assert await store.list_counts() == ListCounts(ok=7, truncated=3, incomplete=2, short=1)


async def test_failure_kinds_count_failed_users_per_error_kind(store: Store) -> None:
    assert await store.failure_kinds(limit=10) == []
    errors = {
        "1": "timeout after retries: read timed out [https://example.test/a]",
        "2": "timeout after retries: connect timed out [https://example.test/b]",
        "3": "http_404: unexpected page [https://example.test/c]",
        "4": "parse: no list in page",
        "5": "internal error: KeyError('x')",
        "6": None,
    }
    await store.import_users([User(str(i), f"name_{i}") for i in range(1, 9)])
    await store.save(
        [result(uid, status=Status.FAILED, error=err) for uid, err in errors.items()]
        + [result("7", status=Status.NOT_FOUND, error="page says: no such user")]
        + [result("8", status=Status.FAILED, error="timeout after retries: x")]
    )
    # User 8 was collected again: its newest result is ok, so it no longer counts.
    await store.save([result("8", names=3, start=T0 + timedelta(hours=1))])
    kinds = await store.failure_kinds(limit=10)
    assert kinds[0] == ("timeout", 2)
    assert sorted(kinds[1:]) == [("(none)", 1), ("http_404", 1), ("internal", 1), ("parse", 1)]
    assert len(await store.failure_kinds(limit=2)) == 2
