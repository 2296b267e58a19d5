"""The plan commands: split users into partitions (NTILE in the store's SQL), show the
plan, place users imported after it; and the checks a run makes against the plan."""

from __future__ import annotations

import structlog

from friendscrape.config import Settings
from friendscrape.configparts import store_config, store_retry_policy
from friendscrape.errors import PlanError, UsageError
from friendscrape.models import Partition, PlanCut
from friendscrape.platforms import NO_PLATFORM, PAGE_SIZES
from friendscrape.stores import opened_store, retried
from friendscrape.stores.base import LeaseHolder, PlanReads, PlanStore, now_utc

log = structlog.get_logger("friendscrape")


async def _page_size(store: PlanStore, settings: Settings) -> int:
    """The job's platform's page size, for ``--balance pages``; a warning when no user
    has a following count (every user then weighs the same)."""
    platform = await store.job_platform() or settings.source
    if platform is None:
        msg = f"--balance pages weighs users by their platform's page size, and {NO_PLATFORM}"
        raise UsageError(msg)
    if not await store.following_counts_known():
        log.warning(
            "plan.no_following_counts",
            note="no user has a following count: --balance pages weighs every user equally",
        )
    return PAGE_SIZES[platform]


async def plan(
    settings: Settings, count: int, *, force: bool, balance: str = "users"
) -> tuple[list[Partition], PlanCut | None]:
    """Split users into ``count`` partitions (``balance``: equal ``users``, or equal
    expected ``pages``); refuses to move users once results exist. Returns the plan
    and how it was cut, as the store recorded it with the plan."""
    if count < 1:
        msg = f"--count must be at least 1, got {count}"
        raise UsageError(msg)
    async with opened_store(store_config(settings)) as store:
        await _require_users(store)
        await _require_no_live_run(store)
        results = await store.result_count()
        if results and not force:
            msg = (
                f"{results} users already have results; re-planning moves users between "
                "partitions: pass --force to replace the plan anyway"
            )
            raise PlanError(msg)
        page_size = await _page_size(store, settings) if balance == "pages" else None
        # Replacing the plan again gives the same plan: safe to retry.
        parts = await retried(
            store_retry_policy(settings),
            "plan_partitions",
            lambda: store.plan_partitions(
                count, page_size=page_size, max_friends=settings.max_friends
            ),
        )
        # What the plan's transaction recorded beside it: no need to read it back.
        return parts, PlanCut.of(page_size, settings.max_friends)


async def show_plan(settings: Settings) -> tuple[list[Partition], PlanCut | None]:
    """The stored plan, and how it was cut (None: not recorded, an older store)."""
    async with opened_store(store_config(settings), read_only=True) as store:
        return await _require_plan(store), await store.plan_cut()


async def warn_if_cap_differs(store: PlanReads, max_friends: int) -> None:
    """Log ``plan.max_friends_differs`` when the plan was cut by pages weighed with
    another max_friends than this worker's: the worker reads partitions' expected pages
    with its own, so the fleet's pace is judged in other units than the plan's cuts.
    The lists stay exact (each stops at the worker's max_friends); only the balance
    suffers, so the worker carries on."""
    cut = await store.plan_cut()
    if cut is None or cut.balance != "pages" or cut.max_friends == max_friends:
        return
    log.warning(
        "plan.max_friends_differs",
        plan_max_friends=cut.max_friends,
        max_friends=max_friends,
        hint=f"run with --max-friends {cut.max_friends} (FRIENDSCRAPE_MAX_FRIENDS) as the "
        "plan was, or plan again with this value",
    )


async def place_users(settings: Settings) -> tuple[dict[int, int], list[Partition]]:
    """Put users imported after the plan into its partitions, moving no placed user
    (the `partitions place` command); returns users placed per partition and the plan."""
    async with opened_store(store_config(settings)) as store:
        await _require_users(store)
        await _require_plan(store)
        # Users a failed try placed stay placed; a retry places the rest.
        placed = await retried(store_retry_policy(settings), "place_unplaced", store.place_unplaced)
        log.info("plan.placed", users=sum(placed.values()), partitions=placed)
        return placed, await store.partitions()


async def _require_users(store: PlanReads) -> None:
    if await store.user_count() == 0:
        msg = "no users in the store: import them first with 'friendscrape users import FILE'"
        raise PlanError(msg)


async def _require_no_live_run(store: PlanStore) -> None:
    """PlanError naming every partition a live run holds: a new plan would move users
    under it, so it would collect users of other partitions and save them as its own.
    ``--force`` does not override this (it only concerns results already saved).

    Checked before the plan is written, not inside its transaction: a run that takes its
    lease in between still slips through (the stores' lease and plan writes are apart)."""
    now = now_utc()
    held = [(part, h) for part, h in (await store.leases()).items() if not h.gone(now)]
    if not held:
        return

    def holder(h: LeaseHolder) -> str:
        since = (h.acquired_at or now).strftime("%Y-%m-%d %H:%M:%SZ")
        return f"pid {h.pid} on {h.host}, since {since}"

    if len(held) == 1:
        part, h = held[0]
        msg = (
            f"partition {part} is held by a live run ({holder(h)}): re-planning now "
            "would move users under it; stop the run or let it end, then plan again "
            "(--force does not override this)"
        )
    else:
        numbers = ", ".join(str(part) for part, _ in held)
        holders = "; ".join(f"{part}: {holder(h)}" for part, h in held)
        msg = (
            f"partitions {numbers} are held by live runs ({holders}): re-planning now "
            "would move users under them; stop the runs or let them end, then plan again "
            "(--force does not override this)"
        )
    raise PlanError(msg)


async def _require_plan(store: PlanReads) -> list[Partition]:
    parts = await store.partitions()
    if not parts:
        msg = "no partition plan yet: run 'friendscrape partitions plan --count N' first"
        raise PlanError(msg)
    return parts


async def check_plan(store: PlanReads) -> list[Partition]:
    """The plan, or a PlanError saying why there is none to collect."""
    await _require_users(store)
    return await _require_plan(store)


async def check_partition(store: PlanReads, number: int) -> Partition:
    """The plan's partition ``number``, or a PlanError saying what is wrong."""
    await _require_users(store)
    parts = await _require_plan(store)
    for part in parts:
        if part.number == number:
            return part
    msg = f"partition {number} is not in the plan (partitions 1 to {parts[-1].number})"
    raise PlanError(msg)
