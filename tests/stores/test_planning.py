"""Pure planning: the same split as SQL NTILE(n) OVER (ORDER BY user_id), ids sorted as numbers."""

from __future__ import annotations

import pytest

from friendscrape.errors import UsageError
from friendscrape.stores.planning import numeric_id, sort_key
from planning_reference import ntile_sizes, plan


def test_ntile_sizes_give_the_remainder_to_the_first_groups() -> None:
    assert ntile_sizes(10, 3) == [4, 3, 3]
    assert ntile_sizes(2, 4) == [1, 1, 0, 0]
    assert sum(ntile_sizes(3_600_000, 10)) == 3_600_000


def test_numeric_ids_sort_as_numbers_and_others_after() -> None:
    ids = ["100", "9", "alice.example", "25", "00042", "99999999999999999999"]
    assert sorted(ids, key=sort_key) == [
        "9",
        "25",
        "00042",
        "100",
        "99999999999999999999",
        "alice.example",
    ]
    assert numeric_id("99999999999999999999") is None  # beyond INT64: sorts as text
    assert numeric_id("\u0663") is None  # a non-ASCII digit is not a number here


def test_plan_matches_ntile() -> None:
    ids = [str(i) for i in (5, 100, 20, 3, 1000, 7, 9)]
    parts = plan(ids, 3)
    assert [(p.number, p.user_count, p.min_user_id, p.max_user_id) for p in parts] == [
        (1, 3, "3", "7"),
        (2, 2, "9", "20"),
        (3, 2, "100", "1000"),
    ]


def test_count_must_be_positive() -> None:
    with pytest.raises(UsageError):
        ntile_sizes(5, 0)
