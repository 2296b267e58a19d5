"""A user's expected pages stop at max_friends (issue 24): its list is walked to at most
max_friends names, so `partitions plan --balance pages`, the plan's expected pages a
partition (``partition_pages``) and a claim's pages left (``claim_read``) weigh it
ceil(min(following count, max_friends) / page size) + 1, the same on both stores; the
median weight of users without a count is taken over the capped weights."""

from __future__ import annotations

from pathlib import Path

from friendscrape.core.claim import ClaimConfig, _pending
from friendscrape.core.lease import LeaseConfig
from friendscrape.core.pace import ClaimPace
from friendscrape.models import User
from friendscrape.retry import RetryPolicy
from friendscrape.stores.base import ClaimRead, Lease, Store
from reliability.harness import clean_env, run_cli
from storefixtures import ok_result

PAGE = 20
CAP = 200  # max_friends: a list stops at 200 names, 10 pages of 20
CAPPED = CAP // PAGE + 1  # 11: what a user with a count far above the cap weighs


async def _import(store: Store, counts: list[int | None]) -> None:
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])


async def test_a_count_far_above_max_friends_weighs_max_friends_pages(store: Store) -> None:
    # Capped weights 2, 11, 11, 11 (uncapped 2, 251, 301, 351): the unknown count weighs
    # the capped median, 11 (uncapped it would weigh 301).
    await _import(store, [20, 5000, 6000, 7000, None])
    await store.plan_partitions(1, page_size=PAGE, max_friends=CAP)
    assert await store.partition_pages(PAGE, max_friends=CAP) == {1: 2 + CAPPED * 4}
    # No cap given: each whole count, as before max_friends was passed.
    assert await store.partition_pages(PAGE) == {1: 2 + 251 + 301 + 351 + 301}


async def test_a_plan_by_pages_is_balanced_by_capped_weights(store: Store) -> None:
    # Capped: 11, 11, 10, 10, 10, 10 = 62, halves of 31: user 4 starts at 32, in the
    # second. Uncapped (201, 201, 10 ...) the two heavy users filled the first half.
    counts: list[int | None] = [4000, 4000, 180, 180, 180, 180]
    await _import(store, counts)
    plan = await store.plan_partitions(2, page_size=PAGE, max_friends=CAP)
    assert [p.user_count for p in plan] == [3, 3]
    assert await store.partition_pages(PAGE, max_friends=CAP) == {1: 32, 2: 30}
    uncapped = await store.plan_partitions(2, page_size=PAGE)
    assert [p.user_count for p in uncapped] == [2, 4]


async def test_a_claims_pages_left_are_capped(store: Store) -> None:
    # Known capped weights 11, 11, 10 (median 11), user 4 unknown: 43 in all; user 1
    # saved leaves 32 (uncapped 201 + 10 + 201 = 412).
    await _import(store, [4000, 4000, 180, None])
    await store.plan_partitions(1, page_size=PAGE, max_friends=CAP)
    await store.acquire_lease(Lease(partition=1, run_id="run-a", ttl=60.0))
    assert (await store.claim_read(retry_failed=False, page_size=PAGE, max_friends=CAP)).left == {
        1: 43
    }
    await store.save([ok_result("1", ("a", "b"))])
    read = await store.claim_read(retry_failed=False, page_size=PAGE, max_friends=CAP)
    assert read.left == {1: CAPPED + 10 + CAPPED}
    assert read.users == {1: 3}


class _Recorded:
    """The reads of a claim, recording the max_friends each was asked with."""

    def __init__(self) -> None:
        self.asked: list[int | None] = []

    async def partition_pages(
        self, page_size: int | None, *, max_friends: int | None = None
    ) -> dict[int, int]:
        self.asked.append(max_friends)
        return {1: 10}

    async def claim_read(
        self, *, retry_failed: bool, page_size: int | None, max_friends: int | None = None
    ) -> ClaimRead:
        self.asked.append(max_friends)
        return ClaimRead([1], {}, {})


async def test_a_worker_weighs_its_claims_with_its_max_friends() -> None:
    lease = LeaseConfig(ttl=30.0, heartbeat=5.0, retry=RetryPolicy(1, 1.0, 0.01, 0.01))
    config = ClaimConfig(lease=lease, retry_failed=False, page_size=PAGE, max_friends=CAP)
    reads = _Recorded()
    await _pending(reads, config, ClaimPace())  # type: ignore[arg-type]
    assert reads.asked == [CAP, CAP]


async def test_the_plan_command_caps_weights_at_max_friends(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    rows = "".join(f"{i},u{i},{c}\n" for i, c in enumerate([4000, 4000, 180, 180, 180, 180], 1))
    users.write_text("user_id,screen_name,following_count\n" + rows, encoding="utf-8")
    store = ["--store", f"sqlite:///{tmp_path / 'job.db'}"]
    env = clean_env(FRIENDSCRAPE_MAX_FRIENDS=str(CAP))
    code, done = await run_cli(
        ["users", "import", str(users), "--source", "twitter-mobile", *store], env=env
    )
    assert code == 0, done.tail()
    plan = ["partitions", "plan", "--count", "2", "--balance", "pages", *store]
    code, done = await run_cli(plan, env=env)
    assert code == 0, done.tail()
    rows_out = [line.split() for line in done.stdout_other]
    sizes = {int(r[0]): int(r[1]) for r in rows_out if r and r[0].isdigit()}
    assert sizes == {1: 3, 2: 3}, done.stdout_other
