"""The leave rule's margin: a worker leaves the free partitions to the others only when
its partition would take well over their finish, never in a close case."""

from __future__ import annotations

import time

from friendscrape.core.claim import LEAVE_MARGIN, ClaimPace


def _pace(own_seconds: float) -> ClaimPace:
    """Nine other workers ending 9 partitions in 9 s (one a second, each taking 9 s a
    partition); this worker's partitions took ``own_seconds`` each."""
    now = time.monotonic()
    return ClaimPace(first=(now - 9.0, 20), last=(now, 11), own=[own_seconds] * 2)


def _verdict(factor: float) -> tuple[float, float] | None:
    """The leave rule's verdict, 9 free and 9 others, when this worker's partitions take
    ``factor`` times the others' finish (half a partition, then one each: about 14 s;
    its own share barely moves their pace, so two passes settle it)."""
    own = 14.0
    for _ in range(3):
        theirs = _pace(own).others_seconds(9)
        assert theirs is not None
        own = factor * (theirs / 2 + theirs)
    return _pace(own).leave_to_others(9, 9, draining=False)


def test_a_close_case_claims() -> None:
    """6.7 s against 6.3 s: the estimates cannot tell them apart; it claims."""
    assert _verdict(1.07) is None


def test_just_under_the_margin_claims() -> None:
    assert _verdict(LEAVE_MARGIN - 0.1) is None


def test_a_worker_well_over_the_margin_leaves() -> None:
    verdict = _verdict(LEAVE_MARGIN + 0.3)
    assert verdict is not None
    own, finish = verdict
    assert own > LEAVE_MARGIN * finish
