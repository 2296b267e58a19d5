"""A job the report tests draw: ten partitions, 97% ok, a few of every other status,
truncated and short lists, failures of three kinds, and rate-limit pauses in the runs'
samples. Written through the store's own API, so it lands the same on every store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import RunSample, Store

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PARTITIONS = 10
PER_PARTITION = 20
USERS = PARTITIONS * PER_PARTITION
PENDING_IN_LAST = 5
"""Users of the last partition left without a result."""

# Statuses by position among the collected: 97% ok at most sizes (1 in 33 is not ok).
_ODD = {
    33: Status.SUSPENDED,
    66: Status.PROTECTED,
    99: Status.FAILED,
    132: Status.FAILED,
    165: Status.NOT_FOUND,
    190: Status.FAILED,
}
_ERRORS = {
    99: "timeout after retries: read timed out [https://upstream.test/1]",
    132: "timeout after retries: connect timed out [https://upstream.test/2]",
    190: "http_404: the page is gone [https://upstream.test/3]",
}


@dataclass(frozen=True, slots=True)
class Expected:
    """What the page must say of the job above."""

    collected: int = USERS - PENDING_IN_LAST
    ok: int = USERS - PENDING_IN_LAST - len(_ODD)
    failed: int = 3
    truncated: int = 4
    incomplete: int = 2
    short: int = 3


def _result(index: int) -> FriendList:
    part = (index - 1) // PER_PARTITION + 1
    k = (index - 1) % PER_PARTITION
    start = T0 + timedelta(minutes=6 * k + 3 * part)
    status = _ODD.get(index, Status.OK)
    names = 10 + index % 7 if status is Status.OK else 0
    following: int | None = names
    truncated = False
    if status is Status.OK and index in (7, 27, 47, 67):
        truncated = True  # capped at max_friends; two of them far below their count
        following = names if index in (7, 27) else 5_000
    if status is Status.OK and index in (11, 31, 51):
        following = names * 3  # walked to the end, listed a third of the count
    return FriendList(
        str(index),
        f"user{index:04d}",
        status,
        "twitter-mobile",
        part,
        start,
        start + timedelta(seconds=20),
        friend_names=tuple(f"f{j}" for j in range(names)),
        following_count=following,
        truncated=truncated,
        error=_ERRORS.get(index),
    )


def samples() -> list[RunSample]:
    """Each partition's run samples every 30 minutes; 429s and pauses in the second hour."""
    out = []
    for part in range(1, PARTITIONS + 1):
        for m in range(0, 150, 30):
            limited = 60 <= m < 120
            out.append(
                RunSample(
                    run_id=f"run{part}",
                    partition=part,
                    at=T0 + timedelta(minutes=m),
                    source="twitter-mobile",
                    upstream_host="upstream.test",
                    simulated=False,
                    users_done=2,
                    pages=4,
                    rate_limited=part if limited else 0,
                    paused_seconds=30.0 * part if limited else 0.0,
                )
            )
    return out


async def fill(store: Store, *, with_samples: bool = True) -> Expected:
    """Import, plan and save the job into an opened, empty store."""
    await store.import_users([User(str(i), f"user{i:04d}") for i in range(1, USERS + 1)])
    await store.plan_partitions(PARTITIONS)
    await store.save([_result(i) for i in range(1, USERS - PENDING_IN_LAST + 1)])
    if with_samples:
        for sample in samples():
            await store.record_sample(sample)
    return Expected()
