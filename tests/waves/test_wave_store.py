"""The waves seam on each store: pending users per wave, --retry-failed in the current
wave, one row per user and wave, and each wave's lists read back as saved (unchanged
lists stored once, a list replaced by a retry within the wave kept for the wave before)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from friendscrape.errors import WaveRaceError
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import Store
from friendscrape.stores.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)
IDS = ["101", "102", "103", "104"]


def _result(
    user: str, names: tuple[str, ...], wave: int, *, ok: bool = True, later: int = 0
) -> FriendList:
    at = T0 + timedelta(days=wave, seconds=int(user), minutes=later)
    return FriendList(
        user_id=user,
        screen_name=f"n{user}",
        status=Status.OK if ok else Status.FAILED,
        source="twitter-mobile",
        partition=1,
        start_at=at,
        end_at=at + timedelta(seconds=1),
        friend_names=names if ok else (),
        error=None if ok else "timeout: gone",
    )


async def _pending(store: Store, *, retry_failed: bool = False) -> list[str]:
    page = await store.pending_users(1, retry_failed=retry_failed, cursor=None, limit=100)
    return [u.user_id for u in page.users]


async def _lists(store: Store, wave: int) -> dict[str, tuple[str, tuple[str, ...]]]:
    found = {}
    async for row in store.wave_rows(wave):
        result = row.result()
        found[result.user_id] = (result.status.value, result.friend_names)
    return found


async def test_waves_keep_one_row_per_user_and_each_waves_lists(store: Store) -> None:
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(1)
    first = {"101": ("a", "b"), "102": ("c",), "103": ("d", "e"), "104": ("f",)}
    assert await _pending(store) == IDS
    await store.save([_result(u, names, 1) for u, names in first.items()])
    assert await _pending(store) == []
    assert await store.current_wave() == 1

    assert await store.open_wave(T0 + timedelta(days=2)) == 2
    assert await store.current_wave() == 2
    assert await _pending(store) == IDS  # every user pending again, nothing written per user
    # 101 unchanged, 102 changed, 103 failed, 104 unchanged and then... nothing else.
    await store.save(
        [
            _result("101", ("a", "b"), 2),
            _result("102", ("c", "x"), 2),
            _result("103", (), 2, ok=False),
            _result("104", ("f",), 2),
        ]
    )
    assert await _pending(store) == []
    assert await _pending(store, retry_failed=True) == ["103"]  # the current wave's failure
    await store.save([_result("103", ("d",), 2, later=5)])  # retried: one follow fewer
    assert await _pending(store, retry_failed=True) == []

    assert await _lists(store, 1) == {u: ("ok", names) for u, names in first.items()}
    assert await _lists(store, 2) == {
        "101": ("ok", ("a", "b")),
        "102": ("ok", ("c", "x")),
        "103": ("ok", ("d",)),
        "104": ("ok", ("f",)),
    }
    summaries = await store.wave_summaries()
    assert [(s.wave, s.done, s.ok, s.changed) for s in summaries] == [(1, 4, 4, 0), (2, 4, 4, 2)]

    # A third wave: 104 changes now; the earlier waves still read as they were.
    await store.open_wave(T0 + timedelta(days=3))
    await _pending(store)
    second = {u: names for u, (_, names) in (await _lists(store, 2)).items()}
    second["104"] = ("f", "g")
    await store.save([_result(u, names, 3) for u, names in second.items()])
    assert (await _lists(store, 3))["104"] == ("ok", ("f", "g"))
    assert (await _lists(store, 2))["104"] == ("ok", ("f",))
    assert (await _lists(store, 1))["102"] == ("ok", ("c",))
    assert [s.changed for s in await store.wave_summaries()] == [0, 2, 1]


async def test_report_panels_count_the_current_wave_only(store: Store) -> None:
    """The friend-count histogram, the lists' and the failures' counts read the current
    wave's results, as status does: a user not collected again yet is not counted from an
    earlier wave."""
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(1)
    await _pending(store)
    many = tuple(f"f{i}" for i in range(40))
    await store.save(
        [
            _result("101", many, 1),
            _result("102", ("a",), 1),
            _result("103", (), 1, ok=False),
            _result("104", ("b",), 1),
        ]
    )
    await store.open_wave(T0 + timedelta(days=2))
    await _pending(store)
    failed = _result("104", (), 2, ok=False)
    await store.save([_result("102", ("a", "c"), 2), replace(failed, error="http_404: gone")])

    assert await store.friend_histogram(bins=4) == (1, [(2, 1)])  # 101's 40 are wave 1's
    counts = await store.list_counts()
    assert counts.ok == 1
    assert await store.failure_kinds(limit=10) == [("http_404", 1)]  # not 103's timeout


async def test_a_wave_opened_meanwhile_is_not_opened_again(store: Store) -> None:
    """An open that read the current wave before another open added the next one is
    refused, and the wave stays opened once (BigQuery: a guarded MERGE; SQLite reads and
    writes in one transaction)."""
    await store.import_users([User(i, f"n{i}") for i in IDS])
    await store.plan_partitions(1)
    assert await store.open_wave(T0 + timedelta(days=2)) == 2
    stale = store.current_wave
    store.current_wave = _one  # type: ignore[method-assign]
    try:
        if isinstance(store, SqliteStore):
            assert await store.open_wave(T0 + timedelta(days=3)) == 3  # no stale read
            return
        with pytest.raises(WaveRaceError, match="opened wave 2 at the same time"):
            await store.open_wave(T0 + timedelta(days=3))
    finally:
        store.current_wave = stale  # type: ignore[method-assign]
    summaries = await store.wave_summaries()
    assert [(s.wave, s.opened_at) for s in summaries] == [
        (1, summaries[0].opened_at),
        (2, T0 + timedelta(days=2)),
    ]
    assert await store.current_wave() == 2


async def _one() -> int:
    return 1
