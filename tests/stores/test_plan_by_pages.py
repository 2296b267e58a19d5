"""`partitions plan --balance pages` (issue 24): partitions cut by expected pages, in plan
order, the same on both stores; and the command's refusals and warning as processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from friendscrape.commands.run.command import _weighing
from friendscrape.models import User
from friendscrape.platforms import PAGE_SIZES
from friendscrape.retry import RetryPolicy
from friendscrape.sources import bluesky, mastodon, x_api
from friendscrape.stores.base import Store
from reliability.harness import clean_env, run_cli

PAGE = 20


def weight(count: int, page: int = PAGE) -> int:
    return math.ceil(count / page) + 1


async def _members(store: Store, part: int) -> list[str]:
    page = await store.pending_users(part, retry_failed=False, cursor=None, limit=1000)
    return [u.user_id for u in page.users]


async def test_each_partition_holds_about_an_equal_share_of_pages(store: Store) -> None:
    # One heavy user among light ones: by users the first partition would hold it and
    # nine light users; by pages it stands (nearly) alone.
    counts = [4000] + [20] * 59
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])
    plan = await store.plan_partitions(4, page_size=PAGE)
    total = sum(weight(c) for c in counts)
    assert [p.number for p in plan] == list(range(1, len(plan) + 1))
    assert sum(p.user_count for p in plan) == len(counts)
    seen: list[str] = []
    for part in plan:
        ids = await _members(store, part.number)
        assert len(ids) == part.user_count
        seen += ids
        pages = sum(weight(counts[int(i) - 1]) for i in ids)
        # A share is total/4; a cut lands on a user's first page, so a partition is off
        # by less than the heaviest user's weight.
        assert abs(pages - total / len(plan)) < weight(4000), (part, pages, total)
    assert seen == [str(i + 1) for i in range(len(counts))], "plan order kept, each user once"
    assert (await _members(store, 1)) == ["1"]


async def test_unknown_counts_weigh_the_median_and_none_known_weighs_equally(
    store: Store,
) -> None:
    # 1..8 known (weights 2,2,2,2,6,6,6,6 -> median 6 at the upper middle), 9..12 unknown.
    counts: list[int | None] = [20, 20, 20, 20, 100, 100, 100, 100, None, None, None, None]
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])
    assert await store.following_counts_known() == 8
    plan = await store.plan_partitions(2, page_size=PAGE)
    # Weights 2*4 + 6*4 + 6*4 = 56 (unknown counts weigh the median 6, not 0 or 2): a
    # user belongs to the half its work starts in; user 8 starts at 26 < 28, user 9 at 32.
    assert [p.user_count for p in plan] == [8, 4]


async def test_an_unknown_count_weighs_the_median_not_the_heaviest(store: Store) -> None:
    # Weights 2, 2, 2, 6, 6, 6, 51 known: the median is 6, the heaviest 51 (which the local
    # BigQuery server gave as the middle of APPROX_QUANTILES(x, 2)).
    counts: list[int | None] = [20, 20, 20, 100, 100, 100, 1000, None]
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])
    await store.plan_partitions(1, page_size=PAGE)
    assert await store.partition_pages(PAGE) == {1: 2 * 3 + 6 * 3 + 51 + 6}


async def test_a_users_weight_is_its_pages_rounded_up(store: Store) -> None:
    # A following count of 1 needs one page more than 0 (weights 2 and 1): 12 in all, a
    # share of 6, so user 4 starts the second partition. Weighed by following count plus
    # a page (22 and 21, as the local BigQuery-compatible server's DIV once gave them),
    # the halves would be 4 and 4.
    counts = [1, 1, 1, 1, 0, 0, 0, 0]
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])
    plan = await store.plan_partitions(2, page_size=PAGE)
    assert [p.user_count for p in plan] == [3, 5]


async def test_no_counts_at_all_plan_like_users(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name\n" + "".join(f"{i},u{i}\n" for i in range(1, 13)), encoding="utf-8"
    )
    store = ["--store", f"sqlite:///{tmp_path / 'job.db'}"]
    code, done = await run_cli(["users", "import", str(users), "--source", "bluesky", *store])
    assert code == 0, done.tail()
    code, done = await run_cli(["partitions", "plan", "--count", "4", "--balance", "pages", *store])
    assert code == 0, done.tail()
    # The harness asks for JSON logs: the warning is an event.
    [warned] = done.named("plan.no_following_counts")
    assert "no user has a following count" in warned["note"]
    rows = [line.split() for line in done.stdout_other]
    sizes = {int(r[0]): int(r[1]) for r in rows if r and r[0].isdigit()}
    assert sizes == {1: 3, 2: 3, 3: 3, 4: 3}, done.stdout_other


async def test_pages_balance_needs_a_platform(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name,following_count\n1,a,5\n", encoding="utf-8")
    store = ["--store", f"sqlite:///{tmp_path / 'job.db'}"]
    env = clean_env()
    code, done = await run_cli(["users", "import", str(users), *store], env=env)
    assert code == 0, done.tail()
    code, done = await run_cli(
        ["partitions", "plan", "--count", "2", "--balance", "pages", *store], env=env
    )
    assert code == 2, done.tail()
    assert "Traceback" not in done.stderr
    assert "--balance pages weighs users by their platform's page size" in done.stderr


@pytest.mark.parametrize(
    ("platform", "size"),
    [("x-api", x_api.PAGE_SIZE), ("bluesky", bluesky.PAGE_SIZE), ("mastodon", mastodon.PAGE_SIZE)],
)
def test_page_sizes_are_the_sources(platform: str, size: int) -> None:
    assert PAGE_SIZES[platform] == size


async def test_each_partitions_expected_pages_are_read_as_the_plan_weighed_them(
    store: Store,
) -> None:
    """``partition_pages``: what ``run --partition next`` weighs partitions by (the leave
    rule), the plan's own weights: unknown counts weigh the median; without a page size,
    a partition weighs its users."""
    counts: list[int | None] = [20, 20, 20, 20, 100, 100, 100, 100, None, None, None, None]
    await store.import_users([User(str(i + 1), f"u{i + 1}", c) for i, c in enumerate(counts)])
    await store.plan_partitions(2, page_size=PAGE)
    assert await store.partition_pages(PAGE) == {1: 2 * 4 + 6 * 4, 2: 6 * 4}
    assert await store.partition_pages(None) == {1: 8, 2: 4}


async def test_next_weighs_partitions_by_pages_only_where_following_counts_are_known(
    store: Store,
) -> None:
    """``run --partition next`` weighs partitions by their pages where the platform has
    a page size and some following count is known; with none known every user weighs
    one, and a worker's progress is counted in users, as its partitions are."""
    policy = RetryPolicy(1, 1.0, 0.01, 0.01)
    await store.import_users([User(str(i + 1), f"u{i + 1}", None) for i in range(4)])
    assert await _weighing(store, "bluesky", policy) is None
    await store.import_users([User("9", "u9", 300)])
    assert await _weighing(store, "bluesky", policy) == bluesky.PAGE_SIZE
    assert await _weighing(store, "no-such-platform", policy) is None
