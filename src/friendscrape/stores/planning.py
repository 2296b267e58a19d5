"""The pure rules the stores' plan SQL follows: which ids sort as numbers, how many
partitions a plan may have, and where users imported after the plan are placed."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from friendscrape.errors import PlanError
from friendscrape.models import Partition

# Ids must fit a signed 64-bit integer (SQLite INTEGER, BigQuery INT64) to sort as
# numbers; Twitter ids do. Anything else sorts as text, after every numeric id.
_MAX_INT64 = 2**63 - 1
_MAX_NUMERIC_DIGITS = 19


def numeric_id(user_id: str) -> int | None:
    """The id as a number when it is all ASCII digits and fits INT64, else None."""
    if user_id.isascii() and user_id.isdigit() and len(user_id) <= _MAX_NUMERIC_DIGITS:
        number = int(user_id)
        if number <= _MAX_INT64:
            return number
    return None


def sort_key(user_id: str) -> tuple[int, int, str]:
    """Plan order: numeric ids by value first, then other ids as text."""
    number = numeric_id(user_id)
    if number is None:
        return (1, 0, user_id)
    return (0, number, user_id)


def place(user_ids: Sequence[str], plan_: Sequence[Partition]) -> dict[str, int]:
    """The partition of each id outside ``plan_``: the first whose range (up to its
    max_user_id in plan order) reaches the id, and the last for ids past every range.

    Ids between two partitions' ranges go to the later one; ids before the first range
    go to the first. Nothing already planned moves, so finished partitions stay finished
    except for the users added to them.
    """
    if not plan_:
        return {}
    ordered = sorted(plan_, key=lambda p: p.number)
    bounds = [sort_key(p.max_user_id) for p in ordered]
    placed: dict[str, int] = {}
    for user_id in user_ids:
        index = bisect.bisect_left(bounds, sort_key(user_id))
        placed[user_id] = ordered[min(index, len(ordered) - 1)].number
    return placed


def check_count(count: int) -> None:
    """Refuse a plan of fewer than one partition (PlanError)."""
    if count < 1:
        msg = f"partition count must be at least 1, got {count}"
        raise PlanError(msg)


class Placement(NamedTuple):
    """Where one user outside the plan goes: its partition and plan position."""

    user_id: str
    partition: int
    position: int


def placements(user_ids: Sequence[str], plan_: Sequence[Partition], last: int) -> list[Placement]:
    """The users outside ``plan_`` placed (``place``), in plan order, at positions after
    ``last``, the last position in use: a partition's cursor (its plan position) then
    reaches them after its existing users."""
    where = place(user_ids, plan_)
    ordered = sorted(where, key=sort_key)
    return [Placement(uid, where[uid], last + i) for i, uid in enumerate(ordered, start=1)]


def placed_counts(placed: Iterable[Placement]) -> dict[int, int]:
    """Users placed per partition."""
    counts: dict[int, int] = {}
    for p in placed:
        counts[p.partition] = counts.get(p.partition, 0) + 1
    return counts
